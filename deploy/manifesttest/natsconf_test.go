package manifesttest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// setPasswords puts every password variable of accounts.conf (and the node
// name variables) in the environment, as the config parser needs them.
func setPasswords(t *testing.T) {
	t.Helper()
	for _, a := range accounts(t) {
		t.Setenv(a.passwordVar, "test-"+a.user)
	}
	t.Setenv("SERVER_NAME", "nats-1")
	t.Setenv("POD_NAME", "nats-0")
}

func parseConf(t *testing.T, file string) *server.Options {
	t.Helper()
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return opts
}

// withAccounts copies a container config into a directory beside
// accounts.conf, as it is mounted at run time, and returns its new path.
func withAccounts(t *testing.T, parts ...string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range map[string]string{"nats.conf": filepath.Join(parts...), "accounts.conf": "deploy/nats/accounts.conf"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(read(t, src)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "nats.conf")
}

// TestNATSConfigsParse parses every server config with nats-server's own
// parser (tls.conf needs certificates: deploy/securitytest runs it) and
// checks the cluster layouts: every node lists every route, on ports outside
// the ephemeral range, with its own name.
func TestNATSConfigsParse(t *testing.T) {
	setPasswords(t)
	single := parseConf(t, path("deploy", "nats", "single.conf"))
	if !single.JetStream || single.Port != 4222 || single.Host != "127.0.0.1" {
		t.Errorf("single.conf: JetStream %v on %s:%d", single.JetStream, single.Host, single.Port)
	}
	var local []*server.Options
	for i := 1; i <= 3; i++ {
		local = append(local, parseConf(t, path("deploy", "nats", "cluster", fmt.Sprintf("n%d.conf", i))))
	}
	checkCluster(t, "cluster/n*.conf", local, true)
	container := parseConf(t, withAccounts(t, "deploy", "container", "nats.conf"))
	checkCluster(t, "container/nats.conf", []*server.Options{container}, false)
	k8s := parseConf(t, withAccounts(t, "deploy", "k8s", "nats.conf"))
	checkCluster(t, "k8s/nats.conf", []*server.Options{k8s}, false)
	for _, o := range append(local, single, container, k8s) {
		if len(o.Accounts) < 2 || o.SystemAccount != "SYS" || len(o.Users) < 6 {
			t.Errorf("%s: %d accounts, system account %q, %d users: accounts.conf not included", o.ServerName, len(o.Accounts), o.SystemAccount, len(o.Users))
		}
	}
}

func checkCluster(t *testing.T, name string, nodes []*server.Options, distinctPorts bool) {
	t.Helper()
	seen := map[string]bool{}
	for _, o := range nodes {
		if !o.JetStream || o.ServerName == "" || o.Cluster.Name != "cb" || len(o.Routes) != 3 {
			t.Errorf("%s: node %q: JetStream %v, cluster %q, %d routes", name, o.ServerName, o.JetStream, o.Cluster.Name, len(o.Routes))
		}
		for _, p := range []int{o.Port, o.Cluster.Port} {
			if p >= 32768 && p <= 60999 {
				t.Errorf("%s: node %s uses port %d, in the ephemeral range", name, o.ServerName, p)
			}
		}
		key := o.ServerName
		if distinctPorts {
			key += fmt.Sprint(o.Port, o.Cluster.Port, o.StoreDir)
			var routes []string
			for _, r := range o.Routes {
				routes = append(routes, r.Port())
			}
			if want := []string{"6222", "6223", "6224"}; !slices.Equal(routes, want) {
				t.Errorf("%s: node %s routes to %v, want every node %v", name, o.ServerName, routes, want)
			}
		}
		if seen[key] {
			t.Errorf("%s: two nodes share name, ports or store: %s", name, key)
		}
		seen[key] = true
	}
}

var natsVersionRE = regexp.MustCompile(`github.com/nats-io/nats-server/v2 v(\S+)`)

// natsImage is the official image tag for the server version the Go code
// and tests use (deploy/go.mod).
func natsImage(t testing.TB) string {
	t.Helper()
	m := natsVersionRE.FindStringSubmatch(read(t, "deploy", "go.mod"))
	if m == nil {
		t.Fatal("deploy/go.mod does not require nats-server")
	}
	return "nats:" + m[1] + "-alpine"
}

// TestK8sNATSConfigMap checks the ConfigMap holds our configs verbatim and
// the StatefulSet runs the tested server version on it.
func TestK8sNATSConfigMap(t *testing.T) {
	var cm object
	for _, o := range docs[object](t, "deploy", "k8s", "nats-config.yaml") {
		if o.Kind == "ConfigMap" {
			cm = o
		}
	}
	if cm.Data["accounts.conf"] != read(t, "deploy", "nats", "accounts.conf") {
		t.Error("nats-config.yaml: accounts.conf differs from deploy/nats/accounts.conf; regenerate it (deploy/nats/README.md)")
	}
	if cm.Data["nats.conf"] != read(t, "deploy", "k8s", "nats.conf") {
		t.Error("nats-config.yaml: nats.conf differs from deploy/k8s/nats.conf; regenerate it (deploy/nats/README.md)")
	}
	var sts object
	for _, w := range workloads(t) {
		if w.Kind == "StatefulSet" {
			sts = w
		}
	}
	if sts.Spec.Replicas != 3 || sts.Spec.ServiceName != "nats" {
		t.Errorf("StatefulSet %s: %d replicas, service %q", sts.Metadata.Name, sts.Spec.Replicas, sts.Spec.ServiceName)
	}
	c := sts.Spec.Template.Spec.Containers[0]
	if c.Image != natsImage(t) {
		t.Errorf("NATS image %s, tests run %s", c.Image, natsImage(t))
	}
	volume := ""
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == cm.Metadata.Name {
			volume = v.Name
		}
	}
	mounted := ""
	for _, m := range c.VolumeMounts {
		if m.Name == volume {
			mounted = m.MountPath
		}
	}
	conf := strings.TrimPrefix(strings.Join(c.Args, " "), "--config ")
	if mounted == "" || filepath.Dir(conf) != mounted || cm.Data[filepath.Base(conf)] == "" {
		t.Errorf("NATS runs %v but ConfigMap %s is mounted at %q with keys %v", c.Args, cm.Metadata.Name, mounted, len(cm.Data))
	}
	var headless bool
	for _, o := range docs[object](t, "deploy", "k8s", "nats.yaml") {
		headless = headless || (o.Kind == "Service" && o.Metadata.Name == sts.Spec.ServiceName && o.Spec.ClusterIP == "None")
	}
	if !headless {
		t.Error("no headless Service for the StatefulSet")
	}
}

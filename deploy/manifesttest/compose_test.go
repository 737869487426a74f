package manifesttest

import (
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// composeFile is the part of compose.yaml the checks look at (anchors and
// merge keys are resolved by the YAML decoder).
type composeFile struct {
	Services map[string]struct {
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		Build   *struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Hostname    string            `yaml:"hostname"`
		Environment map[string]string `yaml:"environment"`
		EnvFile     []string          `yaml:"env_file"`
		Volumes     []string          `yaml:"volumes"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
}

var (
	varRE      = regexp.MustCompile(`\$\{([A-Z0-9_]+)`)
	passwordRE = regexp.MustCompile(`^\$\{([A-Z0-9_]+):\?`)
	routeRE    = regexp.MustCompile(`nats-route://([a-z0-9-]+):6222`)
)

func composeDir(parts ...string) string {
	return filepath.Join(append([]string{"deploy", "container"}, parts...)...)
}

// envExample returns the variables of .env.example.
func envExample(t testing.TB) []string {
	t.Helper()
	var keys []string
	for _, line := range strings.Split(read(t, composeDir(".env.example")), "\n") {
		if k, _, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// TestCompose checks compose.yaml: the image it builds has every binary it
// runs, each process logs in as its accounts.conf user with its password
// variable and inbox prefix, mounted files exist, and the NATS nodes are
// the ones the cluster config routes to, on the tested server version.
func TestCompose(t *testing.T) {
	f := docs[composeFile](t, composeDir("compose.yaml"))[0]
	bins := parseDockerfile(t).binaries
	users := accounts(t)
	run := map[string]string{}
	var nodes []string
	for name, s := range f.Services {
		if s.Build != nil && !exists(filepath.Join(root, composeDir(), s.Build.Context, s.Build.Dockerfile)) {
			t.Errorf("%s: builds %s/%s, which does not exist", name, s.Build.Context, s.Build.Dockerfile)
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") && !exists(filepath.Join(root, composeDir(), src)) {
				t.Errorf("%s: mounts %s, which does not exist", name, src)
			}
		}
		if s.Healthcheck == nil {
			t.Errorf("%s: no healthcheck", name)
		}
		switch {
		case s.Image == natsImage(t):
			nodes = append(nodes, s.Hostname)
			checkNATSNode(t, name, s.Command, s.Volumes, s.Environment["SERVER_NAME"], s.Hostname, s.EnvFile)
		case ourImage(s.Image):
			bin := imageBinary(s.Command)
			if !slices.Contains(bins, bin) {
				t.Errorf("%s: command %v is not a binary of the image %v", name, s.Command, bins)
			}
			if hc := s.Healthcheck; hc != nil && (len(hc.Test) < 2 || !slices.Contains(bins, imageBinary(hc.Test[1:]))) {
				t.Errorf("%s: healthcheck %v is not a binary of the image", name, hc.Test)
			}
			user := s.Environment["NATS_USER"]
			checkLogin(t, name, users, user, s.Environment["NATS_INBOX_PREFIX"])
			m := passwordRE.FindStringSubmatch(s.Environment["NATS_PASSWORD"])
			if m == nil || m[1] != users[user].passwordVar {
				t.Errorf("%s: NATS_PASSWORD=%q, want ${%s:?...}", name, s.Environment["NATS_PASSWORD"], users[user].passwordVar)
			}
			run[user] = bin
		default:
			t.Errorf("%s: unexpected image %q", name, s.Image)
		}
	}
	if !maps.Equal(run, services) {
		t.Errorf("compose runs %v, want %v", run, services)
	}
	var routes []string
	for _, m := range routeRE.FindAllStringSubmatch(read(t, composeDir("nats.conf")), -1) {
		routes = append(routes, m[1])
	}
	slices.Sort(nodes)
	if !slices.Equal(nodes, routes) || len(nodes) != 3 {
		t.Errorf("NATS nodes %v, nats.conf routes to %v", nodes, routes)
	}
}

func checkNATSNode(t *testing.T, name string, command, volumes []string, serverName, hostname string, envFile []string) {
	t.Helper()
	conf := strings.TrimPrefix(strings.Join(command, " "), "--config ")
	targets := map[string]string{}
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			targets[parts[1]] = parts[0]
		}
	}
	if targets[conf] != "./nats.conf" || targets[filepath.Join(filepath.Dir(conf), "accounts.conf")] != "../nats/accounts.conf" {
		t.Errorf("%s: runs %q without nats.conf and accounts.conf beside it: %v", name, conf, volumes)
	}
	if serverName != hostname || serverName != name {
		t.Errorf("%s: SERVER_NAME %q, hostname %q", name, serverName, hostname)
	}
	if !slices.Equal(envFile, []string{".env"}) {
		t.Errorf("%s: passwords must come from .env, env_file is %v", name, envFile)
	}
}

// TestComposeSecrets checks every variable compose.yaml needs is in
// .env.example, which holds exactly the password variables of
// accounts.conf, and that .env itself is git-ignored.
func TestComposeSecrets(t *testing.T) {
	vars := envExample(t)
	for _, m := range varRE.FindAllStringSubmatch(read(t, composeDir("compose.yaml")), -1) {
		if !slices.Contains(vars, m[1]) {
			t.Errorf("compose.yaml uses ${%s}, which .env.example lacks", m[1])
		}
	}
	var want []string
	for _, a := range accounts(t) {
		want = append(want, a.passwordVar)
	}
	slices.Sort(want)
	if !slices.Equal(vars, want) {
		t.Errorf(".env.example has %v, accounts.conf needs %v", vars, want)
	}
	if !slices.Contains(strings.Fields(read(t, composeDir(".gitignore"))), ".env") {
		t.Error(".env is not git-ignored")
	}
}

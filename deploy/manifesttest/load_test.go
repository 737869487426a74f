package manifesttest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// root is the repository root, relative to this package.
const root = "../.."

func path(parts ...string) string { return filepath.Join(append([]string{root}, parts...)...) }

func read(t testing.TB, parts ...string) string {
	t.Helper()
	b, err := os.ReadFile(path(parts...))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docs decodes every YAML document of a file into T.
func docs[T any](t testing.TB, parts ...string) []T {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader([]byte(read(t, parts...))))
	var out []T
	for {
		var v T
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", filepath.Join(parts...), len(out)+1, err)
		}
		out = append(out, v)
	}
}

// object is the part of a Kubernetes object the checks look at.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas    int    `yaml:"replicas"`
		ServiceName string `yaml:"serviceName"`
		ClusterIP   string `yaml:"clusterIP"`
		Selector    struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				Containers []container `yaml:"containers"`
				Volumes    []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Resources  []string          `yaml:"resources"` // a Kustomization's
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
}

type probe struct {
	Exec *struct {
		Command []string `yaml:"command"`
	} `yaml:"exec"`
	HTTPGet *struct {
		Path string `yaml:"path"`
	} `yaml:"httpGet"`
}

// env returns the literal value of an environment variable ("" if unset).
func (c container) env(name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// secretRef returns the secret and key an environment variable comes from.
func (c container) secretRef(name string) (string, string) {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			return e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key
		}
	}
	return "", ""
}

// k8sFiles are the Kubernetes manifests.
func k8sFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(path("deploy", "k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/k8s: %v", err)
	}
	for i, f := range files {
		files[i] = filepath.Base(f)
	}
	return files
}

// objects are the Kubernetes objects of every manifest, by file.
func objects(t testing.TB) map[string][]object {
	t.Helper()
	out := map[string][]object{}
	for _, f := range k8sFiles(t) {
		out[f] = docs[object](t, "deploy", "k8s", f)
	}
	return out
}

// workloads are the Deployments and StatefulSets of the manifests applied
// by kustomization.yaml.
func workloads(t testing.TB) []object {
	t.Helper()
	var out []object
	for f, objs := range objects(t) {
		if f == "secret.example.yaml" {
			continue
		}
		for _, o := range objs {
			if o.Kind == "Deployment" || o.Kind == "StatefulSet" {
				out = append(out, o)
			}
		}
	}
	slices.SortFunc(out, func(a, b object) int { return strings.Compare(a.Metadata.Name, b.Metadata.Name) })
	return out
}

// account is a user of accounts.conf and the variable of its password.
type account struct{ user, passwordVar string }

var userRE = regexp.MustCompile(`user:\s*([A-Za-z0-9_-]+),\s*password:\s*\$([A-Z0-9_]+)`)

// accounts lists the users of deploy/nats/accounts.conf.
func accounts(t testing.TB) map[string]account {
	t.Helper()
	out := map[string]account{}
	for _, m := range userRE.FindAllStringSubmatch(read(t, "deploy", "nats", "accounts.conf"), -1) {
		out[m[1]] = account{user: m[1], passwordVar: m[2]}
	}
	if len(out) < 6 {
		t.Fatalf("found only %v in accounts.conf", out)
	}
	return out
}

// imageBinary returns the binary a command of our image runs, or "".
func imageBinary(cmd []string) string {
	if len(cmd) == 0 || !strings.HasPrefix(cmd[0], "/usr/local/bin/") {
		return ""
	}
	return strings.TrimPrefix(cmd[0], "/usr/local/bin/")
}

// ourImage says whether an image reference is the project's image.
func ourImage(image string) bool { return strings.HasPrefix(image, "cbnats/circuit-breaker:") }

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

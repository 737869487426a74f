package manifesttest

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// services are the binaries each deployment must run, by NATS user.
var services = map[string]string{
	"workflow": "workflow-service",
	"token":    "token-service",
	"event":    "event-service",
	"edge":     "edge",
}

// TestK8sManifestsParse checks every document is a named, versioned object
// and kustomization.yaml lists existing files (and not the secret example).
func TestK8sManifestsParse(t *testing.T) {
	for f, objs := range objects(t) {
		if len(objs) == 0 {
			t.Errorf("%s: no documents", f)
		}
		for i, o := range objs {
			if o.APIVersion == "" || o.Kind == "" || (o.Metadata.Name == "" && o.Kind != "Kustomization") {
				t.Errorf("%s: document %d lacks apiVersion, kind or metadata.name", f, i+1)
			}
		}
	}
	k := docs[object](t, "deploy", "k8s", "kustomization.yaml")[0]
	for _, r := range k.Resources {
		if !exists(path("deploy", "k8s", r)) {
			t.Errorf("kustomization.yaml lists %s, which does not exist", r)
		}
	}
	if slices.Contains(k.Resources, "secret.example.yaml") {
		t.Error("kustomization.yaml applies the example secret")
	}
	for _, f := range k8sFiles(t) {
		if f != "kustomization.yaml" && f != "secret.example.yaml" && !slices.Contains(k.Resources, f) {
			t.Errorf("%s is not in kustomization.yaml", f)
		}
	}
}

// TestK8sWorkloads checks each Deployment runs a binary the image has, as
// the NATS user accounts.conf defines, with probes, and selects its pods.
func TestK8sWorkloads(t *testing.T) {
	bins := parseDockerfile(t).binaries
	users := accounts(t)
	run := map[string]string{} // NATS user -> binary
	for _, w := range workloads(t) {
		name := w.Metadata.Name
		for k, v := range w.Spec.Selector.MatchLabels {
			if w.Spec.Template.Metadata.Labels[k] != v {
				t.Errorf("%s: selector %s=%s does not match its pods", name, k, v)
			}
		}
		for _, c := range w.Spec.Template.Spec.Containers {
			if c.ReadinessProbe == nil || c.LivenessProbe == nil {
				t.Errorf("%s/%s: needs readiness and liveness probes", name, c.Name)
			}
			if !ourImage(c.Image) {
				continue
			}
			bin := imageBinary(c.Command)
			if !slices.Contains(bins, bin) {
				t.Errorf("%s: command %v is not a binary of the image %v", name, c.Command, bins)
			}
			for _, p := range []*probe{c.ReadinessProbe, c.LivenessProbe} {
				if p != nil && p.Exec != nil && !slices.Contains(bins, imageBinary(p.Exec.Command)) {
					t.Errorf("%s: probe %v is not a binary of the image", name, p.Exec.Command)
				}
			}
			user := c.env("NATS_USER")
			checkLogin(t, name, users, user, c.env("NATS_INBOX_PREFIX"))
			if _, key := c.secretRef("NATS_PASSWORD"); key != users[user].passwordVar {
				t.Errorf("%s: NATS_PASSWORD from secret key %q, want %q", name, key, users[user].passwordVar)
			}
			if user == "edge" {
				checkEdgeProbes(t, c)
			} else if c.env("CB_REPLICAS") != "3" {
				t.Errorf("%s: CB_REPLICAS=%q on a 3-node cluster, want 3", name, c.env("CB_REPLICAS"))
			}
			run[user] = bin
		}
	}
	if !maps.Equal(run, services) {
		t.Errorf("deployments run %v, want %v", run, services)
	}
}

func checkLogin(t *testing.T, name string, users map[string]account, user, prefix string) {
	t.Helper()
	if _, ok := users[user]; !ok {
		t.Errorf("%s: NATS_USER %q is not a user of accounts.conf", name, user)
	}
	if prefix != "_INBOX_"+user {
		t.Errorf("%s: NATS_INBOX_PREFIX %q, want _INBOX_%s (the only inbox its user may subscribe to)", name, prefix, user)
	}
}

func checkEdgeProbes(t *testing.T, c container) {
	t.Helper()
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/ready" {
		t.Error("edge: readiness probe must GET /ready")
	}
	if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/health" {
		t.Error("edge: liveness probe must GET /health")
	}
}

// TestK8sSecrets checks every secret reference names the Secret of
// secret.example.yaml and one of its keys, which are exactly the password
// variables of accounts.conf, all given to the NATS pods.
func TestK8sSecrets(t *testing.T) {
	secret := docs[object](t, "deploy", "k8s", "secret.example.yaml")[0]
	if secret.Kind != "Secret" {
		t.Fatalf("secret.example.yaml holds a %s", secret.Kind)
	}
	var vars []string
	for _, a := range accounts(t) {
		vars = append(vars, a.passwordVar)
	}
	slices.Sort(vars)
	if keys := slices.Sorted(maps.Keys(secret.StringData)); !slices.Equal(keys, vars) {
		t.Errorf("secret keys %v, accounts.conf needs %v", keys, vars)
	}
	for _, w := range workloads(t) {
		for _, c := range w.Spec.Template.Spec.Containers {
			var given []string
			for _, e := range c.Env {
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					continue
				}
				ref := e.ValueFrom.SecretKeyRef
				if _, ok := secret.StringData[ref.Key]; ref.Name != secret.Metadata.Name || !ok {
					t.Errorf("%s: %s from secret %s key %s, which secret.example.yaml lacks", w.Metadata.Name, e.Name, ref.Name, ref.Key)
				}
				given = append(given, e.Name)
			}
			if strings.HasPrefix(c.Image, "nats:") {
				slices.Sort(given)
				if !slices.Equal(given, vars) {
					t.Errorf("NATS pods get %v from the secret, accounts.conf needs %v", given, vars)
				}
			}
		}
	}
}

package clustertest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Ports are taken below the Linux ephemeral range (32768–60999), so that an
// outgoing connection never holds a port a node must listen on again after
// a restart (nats-server's own cluster tests avoid that range for routes).
const (
	portLow  = 20000
	portHigh = 32000
)

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var out []int
	for tries := 0; len(out) < n; tries++ {
		if tries > 1000 {
			t.Fatalf("no %d free ports in [%d, %d)", n, portLow, portHigh)
		}
		p := portLow + rand.IntN(portHigh-portLow)
		if slices.Contains(out, p) || !portFree(p) {
			continue
		}
		out = append(out, p)
	}
	return out
}

func portFree(p int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// node is one server of a cluster: fixed client and route ports and a store
// directory of its own, so it can be stopped and started again as itself.
type node struct {
	name       string
	clientPort int
	routePort  int
	dir        string
	srv        *server.Server // nil while stopped
}

func (n *node) clientURL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.clientPort) }

// cluster is a JetStream cluster of real servers in the test process,
// listening on loopback TCP.
type cluster struct {
	t      testing.TB
	name   string
	nodes  []*node
	routes []*url.URL
}

// startCluster starts an n-node JetStream cluster and waits for its meta
// leader. Every node lists every route, its own included, so each expects a
// meta group of n from the start. It is shut down when the test ends.
func startCluster(t testing.TB, n int) *cluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	c := &cluster{t: t, name: "cb-test"}
	for i := range n {
		c.nodes = append(c.nodes, &node{name: fmt.Sprintf("n%d", i+1), clientPort: ports[i],
			routePort: ports[n+i], dir: t.TempDir()})
		c.routes = append(c.routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", ports[n+i])})
	}
	t.Cleanup(c.shutdown)
	for i := range c.nodes {
		c.start(i)
	}
	nc := c.connect("cluster-wait")
	defer nc.Close()
	waitMetaLeader(t, nc, 30*time.Second)
	return c
}

func (c *cluster) options(n *node) *server.Options {
	return &server.Options{
		ServerName: n.name,
		Host:       "127.0.0.1",
		Port:       n.clientPort,
		JetStream:  true,
		StoreDir:   n.dir,
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: 8 << 20, // as the embedded server: pages of tokens with long histories
		Cluster:    server.ClusterOpts{Name: c.name, Host: "127.0.0.1", Port: n.routePort},
		Routes:     c.routes,
	}
}

// start starts node i (again) on its ports and store directory.
func (c *cluster) start(i int) {
	c.t.Helper()
	n := c.nodes[i]
	if n.srv != nil {
		c.t.Fatalf("node %s is already running", n.name)
	}
	srv, err := server.NewServer(c.options(n))
	if err != nil {
		c.t.Fatalf("node %s: %v", n.name, err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(20 * time.Second) {
		srv.Shutdown()
		c.t.Fatalf("node %s not ready on port %d", n.name, n.clientPort)
	}
	n.srv = srv
}

// stop shuts node i down and waits until it is gone.
func (c *cluster) stop(i int) {
	if srv := c.nodes[i].srv; srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		c.nodes[i].srv = nil
	}
}

func (c *cluster) shutdown() {
	for i := range c.nodes {
		c.stop(i)
	}
}

// index returns the position of the node called name.
func (c *cluster) index(name string) int {
	c.t.Helper()
	for i, n := range c.nodes {
		if n.name == name {
			return i
		}
	}
	c.t.Fatalf("no node called %q", name)
	return -1
}

// urls is every node's client URL, comma separated, for nats.Connect.
func (c *cluster) urls() string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.clientURL())
	}
	return strings.Join(out, ",")
}

// connect opens a client connection that knows every node and reconnects
// forever, quickly; it is closed when the test ends.
func (c *cluster) connect(name string) *nats.Conn {
	c.t.Helper()
	nc, err := dial(c.urls(), name)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}

// dial connects to urls the way the stack's components do in these tests:
// reconnecting forever, every 100 ms.
func dial(urls, name string) (*nats.Conn, error) {
	return nats.Connect(urls, nats.Name(name), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.ReconnectJitter(50*time.Millisecond, 50*time.Millisecond),
		nats.Timeout(2*time.Second))
}

// attempt is how long one try of a wait loop may take. A JetStream API call
// on a cluster without a leader can hang until its context ends, so every
// try gets its own short deadline.
const attempt = 2 * time.Second

// eventually calls f with a fresh per-attempt deadline until it returns nil,
// failing the test with the last error after d.
func eventually(t testing.TB, d time.Duration, what string, f func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), attempt)
		err := f(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitMetaLeader waits until the cluster answers JetStream API requests,
// which needs an elected meta leader.
func waitMetaLeader(t testing.TB, nc *nats.Conn, d time.Duration) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, d, "JetStream meta leader", func(ctx context.Context) error {
		_, err := js.AccountInfo(ctx)
		return err
	})
}

// streamInfo returns a stream's info once the stream has a leader.
func streamInfo(t testing.TB, js jetstream.JetStream, stream string, d time.Duration) *jetstream.StreamInfo {
	t.Helper()
	var info *jetstream.StreamInfo
	eventually(t, d, "leader of "+stream, func(ctx context.Context) error {
		st, err := js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		if info, err = st.Info(ctx); err != nil {
			return err
		}
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return errors.New("no leader")
		}
		return nil
	})
	return info
}

// waitCurrent waits until stream has a leader and every other one of want
// is a replica that is online and current. It returns the last info.
func waitCurrent(t testing.TB, js jetstream.JetStream, stream string, want []string, d time.Duration) *jetstream.StreamInfo {
	t.Helper()
	var info *jetstream.StreamInfo
	eventually(t, d, "replicas of "+stream+" current", func(ctx context.Context) error {
		st, err := js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		if info, err = st.Info(ctx); err != nil {
			return err
		}
		return replicasCurrent(info, want)
	})
	return info
}

// replicasCurrent checks that info's group is exactly want (leader and
// followers), every follower online and current.
func replicasCurrent(info *jetstream.StreamInfo, want []string) error {
	cl := info.Cluster
	if cl == nil || cl.Leader == "" {
		return errors.New("no leader")
	}
	peers := []string{cl.Leader}
	for _, r := range cl.Replicas {
		if r.Offline || !r.Current {
			return fmt.Errorf("replica %s: offline=%v current=%v lag=%d", r.Name, r.Offline, r.Current, r.Lag)
		}
		peers = append(peers, r.Name)
	}
	slices.Sort(peers)
	if !slices.Equal(peers, want) {
		return fmt.Errorf("peers %v, want %v", peers, want)
	}
	return nil
}

// followersCurrent checks that every online follower of info is current
// (offline ones are ignored): reads served by any live replica are then up
// to date.
func followersCurrent(info *jetstream.StreamInfo) error {
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return errors.New("no leader")
	}
	for _, r := range info.Cluster.Replicas {
		if !r.Offline && !r.Current {
			return fmt.Errorf("replica %s not current (lag %d)", r.Name, r.Lag)
		}
	}
	return nil
}

func (c *cluster) names() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.name)
	}
	slices.Sort(out)
	return out
}

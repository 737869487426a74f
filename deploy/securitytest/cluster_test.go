package securitytest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// routePorts finds three consecutive free ports below the ephemeral range
// (the configs' own 6222-6224 may be taken by another test package).
func routePorts(t *testing.T) int {
	t.Helper()
	for range 50 {
		base := 20000 + rand.IntN(10000)
		free := true
		for i := range 3 {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				free = false
				break
			}
			_ = ln.Close()
		}
		if free {
			return base
		}
	}
	t.Fatal("no free route ports")
	return 0
}

// startCluster starts the three nodes of cluster/n*.conf (client ports
// random, route ports moved together, stores in temporary directories) and
// waits for JetStream; it returns the client URLs.
func startCluster(t *testing.T, pw map[string]string) string {
	t.Helper()
	base := routePorts(t)
	var routes []*url.URL
	for i := range 3 {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", base+i)})
	}
	var urls []string
	for i := range 3 {
		opts, err := server.ProcessConfigFile(filepath.Join(natsDir(t), "cluster", fmt.Sprintf("n%d.conf", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		if len(opts.Routes) != 3 {
			t.Fatalf("n%d.conf lists %d routes, want all 3", i+1, len(opts.Routes))
		}
		opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", -1, 0
		opts.Cluster.Host, opts.Cluster.Port, opts.Routes = "127.0.0.1", base+i, routes
		opts.StoreDir = t.TempDir()
		opts.NoSigs, opts.NoLog = true, true
		ns, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go ns.Start()
		t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatal("cluster node not ready")
		}
		urls = append(urls, ns.ClientURL())
	}
	all := strings.Join(urls, ",")
	admin, err := dial(all, "admin", pw["admin"])
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	js, err := jetstream.New(admin.Conn)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return all
		}
		if time.Now().After(deadline) {
			t.Fatalf("JetStream cluster not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

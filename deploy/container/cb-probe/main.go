// Command cb-probe is the health probe of the container image, which has
// no shell: with a service name it logs in to NATS exactly as that service
// does (the same --nats, --nats-user, --inbox-prefix ... flags and
// environment) and asks the service to answer $SRV.PING.<name>; with
// --http it GETs a URL (the edge's /ready). It exits 0 when healthy.
//
//	cb-probe token                                  # NATS_* from the environment
//	cb-probe --http http://127.0.0.1:4000/ready
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/natsconn"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cb-probe:", err)
		os.Exit(1)
	}
}

type settings struct {
	NATS    config.NATS
	HTTP    string
	Timeout time.Duration
	Service string
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (settings, error) {
	var s settings
	fs := flag.NewFlagSet("cb-probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &config.Flags{FS: fs, Getenv: getenv}
	s.NATS.Register(f, nats.DefaultURL)
	f.String(&s.HTTP, "http", "", "", "probe this URL instead of a service (200 is healthy)")
	f.Duration(&s.Timeout, "timeout", "", 3*time.Second, "give up after this long")
	if err := f.Err(); err != nil {
		return s, err
	}
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	s.Service = fs.Arg(0)
	if (s.Service == "") == (s.HTTP == "") || fs.NArg() > 1 {
		return s, errors.New("usage: cb-probe [NATS flags] SERVICE | cb-probe --http URL")
	}
	return s, nil
}

func run(args []string, getenv func(string) string, stderr io.Writer) error {
	s, err := parse(args, getenv, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.Timeout)
	defer cancel()
	if s.HTTP != "" {
		return probeHTTP(ctx, s.HTTP)
	}
	return probeService(ctx, s.NATS, s.Service)
}

func probeHTTP(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", url, resp.Status, body)
	}
	return nil
}

func probeService(ctx context.Context, cfg config.NATS, service string) error {
	nc, err := natsconn.Connect(cfg, "cb-probe "+service, zerolog.Nop(), nats.MaxReconnects(0))
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", cfg.URL, err)
	}
	defer nc.Close()
	if _, err := nc.RequestWithContext(ctx, subjects.ServicePing(service), nil); err != nil {
		return fmt.Errorf("service %s does not answer: %w", service, err)
	}
	return nil
}

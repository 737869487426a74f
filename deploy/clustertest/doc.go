// Package clustertest holds the fault tests of the whole system on real
// NATS servers over loopback TCP: a 3-node JetStream cluster losing the
// leader of a busy workflow stream under write load (then catching up when
// it comes back), and a single server restarted under the running services.
// The package has tests only; its helpers live in _test.go files.
package clustertest

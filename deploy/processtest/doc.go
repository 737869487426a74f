// Package processtest holds tests that build the real binaries
// (circuit-breaker, token-service and natscli) and run them as separate
// processes: kill -9 durability of the one-process mode with --sync-always,
// the crash of one token-service instance in a queue group, and a stream
// backup and restore with natscli. Everything listens on loopback only.
package processtest

// Package manifesttest checks the deployment files that cannot run here
// (no container engine, no Kubernetes): every YAML document of
// deploy/container and deploy/k8s parses, the Dockerfile builds main
// packages that exist, compose and Kubernetes run only binaries the image
// has, with the NATS user, inbox prefix and password that
// deploy/nats/accounts.conf expects, secrets referenced exist, and every
// NATS config parses with the real server's parser.
//
// The package holds tests only.
package manifesttest

// Package securitytest proves the least-privilege accounts of
// deploy/nats/accounts.conf against a real nats-server started in-process
// from deploy/nats/single.conf: the whole system runs with each component
// logged in as its own user, every allowed path works without a single
// permission violation, and every forbidden action is refused; a tenant's
// own user (tenant-acme) works in its tenant's scope, sees only its
// tenant's objects, is held to the quotas the edge publishes, and reaches
// nothing else.
//
// The package holds tests only.
package securitytest

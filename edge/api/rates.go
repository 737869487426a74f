package api

import (
	"sync"

	"golang.org/x/time/rate"

	"github.com/cbnats/circuitbreaker/shared/fail"
)

// rates holds each tenant's requestsPerSecond quota at the edge: every
// root field of a query, mutation or subscription is one request, over
// every transport. A tenant may burst up to one second's worth.
type rates struct {
	mu     sync.Mutex
	tenant map[string]*rate.Limiter
}

func newRates() *rates { return &rates{tenant: map[string]*rate.Limiter{}} }

// take spends one request of tenant's perSecond (0: no limit), or says
// RESOURCE_EXHAUSTED. A changed quota (a reloaded auth file) applies at once.
func (r *rates) take(tenant string, perSecond float64) error {
	if perSecond <= 0 {
		return nil
	}
	r.mu.Lock()
	l, ok := r.tenant[tenant]
	burst := max(1, int(perSecond))
	if !ok {
		l = rate.NewLimiter(rate.Limit(perSecond), burst)
		r.tenant[tenant] = l
	} else if l.Limit() != rate.Limit(perSecond) {
		l.SetLimit(rate.Limit(perSecond))
		l.SetBurst(burst)
	}
	r.mu.Unlock()
	if !l.Allow() {
		return fail.New(fail.ResourceExhausted, "tenant %s is over its request rate: its quota (requestsPerSecond) is %g", tenant, perSecond)
	}
	return nil
}

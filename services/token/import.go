package token

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/cbnats/circuitbreaker/services/token/store"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/tenant"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Import (token.import, token.importevents): tokens and events as an
// export file holds them (shared/transfer), checked like anything a client
// sends, then stored by store.Import and store.ImportEvents. Both are
// idempotent. An imported token counts as a live token of its tenant.

// importSpecs are the token service's import endpoints.
func (s *Service) importSpecs(srv *rpc.Server) []rpc.Spec {
	return []rpc.Spec{
		{Name: "import", Subject: subjects.TokenImport, Handler: rpc.Endpoint(srv, s.importTokens),
			Description: "Store tokens with their histories as an export file holds them (ids, revisions, times and records kept; NATS sequences new): a token's history entries in numbered parts, its state with the last part, which makes it visible; idempotent (a token stored identically is unchanged, differently a conflict, per token); emits token_imported",
			Request:     `{workflowId, tokens: [{tokenId, first?: int, entries?: [{record, event?}], token?: Token, final?: bool}], triggeredBy?}`,
			Response:    `{items: [{tokenId, outcome: imported|partial|unchanged|conflict|failed, entries?, code?, error?}]}`},
		{Name: "importevents", Subject: subjects.TokenImportEvents, Handler: rpc.Endpoint(srv, s.importEvents),
			Description: "Store retained events of an export file in order (timestamps kept, nats_sequence new); events whose source sequence was imported before are skipped",
			Request:     `{workflowId, events: [{sequence, subject?, time?, event}]}`,
			Response:    `{imported, skipped, expired}`},
	}
}

func (s *Service) importTokens(ctx context.Context, r *wire.ImportTokensRequest) (*wire.ImportTokensReply, error) {
	reply := &wire.ImportTokensReply{Items: make([]wire.ImportOutcome, len(r.Tokens))}
	var parts []*store.ImportPart
	var at []int // index in reply of each part
	finals := 0
	for i := range r.Tokens {
		in := &r.Tokens[i]
		reply.Items[i].TokenID = in.TokenID
		p, err := s.importPart(ctx, r, in)
		if err != nil {
			reply.Items[i].Outcome, reply.Items[i].Code, reply.Items[i].Error = wire.ImportFailed, fail.KindOf(err).String(), err.Error()
			continue
		}
		if p.Token != nil {
			finals++
		}
		parts, at = append(parts, p), append(at, i)
	}
	if finals > 0 {
		if err := s.tenants.admit(ctx, r.WorkflowID); err != nil {
			return nil, err
		}
	}
	res, err := s.store.Import(ctx, r.WorkflowID, parts)
	if err != nil {
		return nil, err
	}
	imported := 0
	for j, rr := range res {
		item := &reply.Items[at[j]]
		item.Outcome, item.Entries = rr.Outcome, rr.Entries
		if rr.Err != nil {
			item.Code, item.Error = fail.KindOf(rr.Err).String(), rr.Err.Error()
		}
		if rr.Outcome == wire.ImportImported {
			imported++
		}
	}
	s.tenants.imported(ctx, r.WorkflowID, imported)
	return reply, nil
}

// importPart checks one part and returns it as the store takes it.
func (s *Service) importPart(ctx context.Context, r *wire.ImportTokensRequest, in *wire.ImportTokenPart) (*store.ImportPart, error) {
	p := &store.ImportPart{TokenID: in.TokenID, First: max(in.First, 1), Entries: make([]flow.Entry, len(in.Entries))}
	for i, it := range in.Entries {
		e, err := importedEntry(it)
		if err != nil {
			return nil, fail.New(fail.BadInput, "token %s, history entry %d: %s", in.TokenID, p.First+i, err.Error())
		}
		p.Entries[i] = e
	}
	if in.Token == nil {
		return p, nil
	}
	t, err := s.importedToken(ctx, r.WorkflowID, in)
	if err != nil {
		return nil, err
	}
	p.Token = t
	p.Event = wire.Event{EventType: wire.EventTokenImported, TokenID: t.ID, WorkflowID: t.WorkflowID, Place: t.Place,
		Timestamp: s.now(), TriggeredBy: optional(r.TriggeredBy)}
	return p, nil
}

// importedToken checks a token's state as a create checks a new one: its
// version exists, its place is one of that version's, its data is JSON,
// its metadata an object; times are required (updatedAt defaults to
// createdAt) and kept in UTC.
func (s *Service) importedToken(ctx context.Context, wfID string, in *wire.ImportTokenPart) (*flow.Token, error) {
	t := *in.Token
	bad := func(format string, args ...any) error {
		return fail.New(fail.BadInput, "token %s: "+format, append([]any{in.TokenID}, args...)...)
	}
	switch {
	case t.ID != in.TokenID:
		return nil, bad("the part's token has id %q", t.ID)
	case t.WorkflowID != "" && tenant.FromContext(ctx).Qualify(t.WorkflowID) != wfID:
		return nil, bad("it is of workflow %s, not %s", t.WorkflowID, wfID)
	case t.Revision < 1:
		return nil, bad("revision must be 1 or more")
	case t.Records < 0:
		return nil, bad("records must not be negative")
	case t.CreatedAt.IsZero():
		return nil, bad("createdAt is required")
	case t.WorkflowVersion < 0:
		return nil, bad("workflowVersion must not be negative")
	}
	t.WorkflowID, t.WorkflowVersion = wfID, max(t.WorkflowVersion, 1)
	if t.UpdatedAt.IsZero() {
		t.UpdatedAt = t.CreatedAt
	}
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	m, err := s.store.Machine(ctx, wfID, t.WorkflowVersion)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(m.Def.Places, t.Place) {
		return nil, bad("place '%s' is not a place of version %d of workflow %s", t.Place, t.WorkflowVersion, wfID)
	}
	if t.Data, err = compactJSON(t.Data, "data", false); err != nil {
		return nil, bad("%s", err.Error())
	}
	if t.Metadata, err = compactJSON(t.Metadata, "metadata", true); err != nil {
		return nil, bad("%s", err.Error())
	}
	t.NatsSequence, t.NatsSubject, t.NatsTimestamp, t.Keys = 0, "", time.Time{}, nil
	return &t, nil
}

// importedEntry checks a history entry: names safe, times given, JSON valid.
func importedEntry(it wire.HistoryItem) (flow.Entry, error) {
	r := it.Record
	if err := firstErr(name("transitionId", r.TransitionID), name("fromPlace", r.FromPlace), name("toPlace", r.ToPlace),
		label("triggeredBy", r.TriggeredBy, wire.MaxTextLen), label("triggeredByClaim", r.TriggeredByClaim, wire.MaxTextLen),
		label("idempotencyKey", r.IdempotencyKey, wire.MaxKeyLen), label("requestHash", r.RequestHash, wire.MaxKeyLen)); err != nil {
		return flow.Entry{}, err
	}
	if r.Timestamp.IsZero() {
		return flow.Entry{}, fail.New(fail.BadInput, "record.timestamp is required")
	}
	md, err := compactJSON(r.Metadata, "record.metadata", true)
	if err != nil {
		return flow.Entry{}, err
	}
	if len(bytes.TrimSpace(r.Metadata)) == 0 {
		md = nil
	}
	r.Timestamp, r.Metadata, r.NatsSequence = r.Timestamp.UTC(), md, 0
	e := flow.Entry{Record: r}
	if ev := it.Event; ev != nil {
		if err := firstErr(name("event.transition", ev.Transition), name("event.from", ev.From), name("event.to", ev.To)); err != nil {
			return flow.Entry{}, err
		}
		if ev.Timestamp.IsZero() {
			return flow.Entry{}, fail.New(fail.BadInput, "event.timestamp is required")
		}
		c := *ev
		c.Timestamp = c.Timestamp.UTC()
		if len(bytes.TrimSpace(c.Data)) > 0 {
			if c.Data, err = compactJSON(c.Data, "event.data", false); err != nil {
				return flow.Entry{}, err
			}
		} else {
			c.Data = nil
		}
		e.Event = &c
	}
	return e, nil
}

func (s *Service) importEvents(ctx context.Context, r *wire.ImportEventsRequest) (*wire.ImportEventsReply, error) {
	var prev uint64
	for i, rec := range r.Events {
		ev := rec.Event
		bad := func(format string, args ...any) error {
			return fail.New(fail.BadInput, "events[%d]: "+format, append([]any{i}, args...)...)
		}
		switch {
		case rec.Sequence <= prev:
			return nil, bad("sequence %d does not follow %d: events go in the order of their source sequences", rec.Sequence, prev)
		case !flow.ValidName(ev.EventType):
			return nil, bad("event_type '%s' is not a name", ev.EventType)
		case ev.Timestamp.IsZero():
			return nil, bad("timestamp is required")
		case ev.WorkflowID != "" && tenant.FromContext(ctx).Qualify(ev.WorkflowID) != r.WorkflowID:
			return nil, bad("it is of workflow %s, not %s", ev.WorkflowID, r.WorkflowID)
		case ev.TokenID != "" && !wire.CanonicalUUID(ev.TokenID):
			return nil, bad("token_id is not a token id")
		}
		if err := firstErr(optionalName("place", ev.Place), optionalName("from_place", ev.FromPlace), optionalName("to_place", ev.ToPlace),
			optionalName("transition_id", ev.TransitionID), labelPtr("triggered_by", ev.TriggeredBy), labelPtr("triggered_by_claim", ev.TriggeredByClaim)); err != nil {
			return nil, bad("%s", err.Error())
		}
		prev = rec.Sequence
	}
	return s.store.ImportEvents(ctx, r.WorkflowID, r.Events)
}

// compactJSON validates raw and returns it compacted; blank is {}. With
// object, it must be a JSON object (null too reads as {}).
func compactJSON(raw json.RawMessage, what string, object bool) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || (object && string(trimmed) == "null") {
		return json.RawMessage(`{}`), nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, trimmed); err != nil {
		return nil, fail.New(fail.BadInput, "%s is not valid JSON", what)
	}
	if object && trimmed[0] != '{' {
		return nil, fail.New(fail.BadInput, "%s must be a JSON object", what)
	}
	return buf.Bytes(), nil
}

func name(field, v string) error {
	if !flow.ValidName(v) {
		return fail.New(fail.BadInput, "%s '%s' is not a name: use letters, digits, '_' and '-' (at most %d)", field, v, flow.MaxNameLen)
	}
	return nil
}

func optionalName(field, v string) error {
	if v == "" {
		return nil
	}
	return name(field, v)
}

func label(field, v string, max int) error {
	if len(v) > max {
		return fail.New(fail.BadInput, "%s is longer than %d bytes", field, max)
	}
	return nil
}

func labelPtr(field string, v *string) error {
	if v == nil {
		return nil
	}
	return label(field, *v, wire.MaxTextLen)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// imported counts n imported tokens of a tenant's workflow as live (see
// created; a failed count is logged).
func (t *tenants) imported(ctx context.Context, workflowID string, n int) {
	name := tenant.OfWorkflow(workflowID)
	if name == "" || n == 0 {
		return
	}
	if err := t.usage.AddLiveTokens(ctx, name, int64(n)); err != nil {
		t.log.Warn().Err(err).Str("tenant", name).Str("workflow", workflowID).Int("tokens", n).Msg("count imported tokens")
	}
}

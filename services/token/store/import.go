package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/jserr"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Import writes tokens as an export file holds them (shared/transfer):
// original ids, revisions, times, data, metadata and history records. It
// solves what the layout upgrade (migrate.go) solves, the same way: a
// token's history may exceed one atomic batch (1000 messages), so its
// entries are written first, in numbered chunks, each with a
// compare-and-swap on the history subject, and its state last, in the same
// batch as the last entries and its token_imported event. The state's
// presence is the token's: before it, the token reads as not found (its
// index entry, written first, dangles harmlessly), and an import cut off
// part-way is resumed by writing the entries after the last one stored
// (entries carry their number). The state carries a compare-and-swap on
// the token's subjects in every place, so of two imports of one token
// exactly one writes it.
//
// Small tokens are written many to a batch (as the committer groups
// changes); a batch that fails on a sequence is retried token by token
// after reading again what is stored. Sequences are those of this
// deployment: a token's natsSequence is its new state's, a history
// record's that of its own entry message, an event's that of the state.

// ImportPart is one part of a token being imported, checked by the
// service: entries numbered from First and, on the final part, the state.
type ImportPart struct {
	TokenID string
	First   int          // number of Entries[0]; 1 for the first entry
	Entries []flow.Entry // in order
	Token   *flow.Token  // the state (Nats* fields and Keys are set here), on the final part only
	Event   wire.Event   // the token_imported event of the final part (sequence and revision set here)
}

// ImportResult is what became of one part: Outcome is one of wire's
// Import* outcomes; Err says why for conflict and failed.
type ImportResult struct {
	Outcome string
	Entries int // entries this call stored
	Err     error
}

// maxImportAttempts bounds the rounds of an import whose batches keep
// losing the stream's last sequence to other writers.
const maxImportAttempts = 20

// Import stores the parts of one workflow's tokens, in order, and returns
// what became of each.
func (s *Store) Import(ctx context.Context, wfID string, parts []*ImportPart) ([]ImportResult, error) {
	wf, err := s.workflow(ctx, wfID)
	if err != nil {
		return nil, err
	}
	res := make([]ImportResult, len(parts))
	pending := make([]int, len(parts))
	for i := range parts {
		pending[i] = i
	}
	// Rounds: each plans (reads) and writes at most one part of a token,
	// since a token's next part is planned on what its previous one wrote;
	// parts whose batch lost a race are planned again, alone, next round.
	retries := 0
	for retried := false; len(pending) > 0; {
		if retried {
			if retries++; retries == maxImportAttempts {
				for _, i := range pending {
					res[i] = ImportResult{Outcome: wire.ImportFailed, Err: fail.New(fail.Unavailable, "the workflow's stream kept moving: import token %s again", parts[i].TokenID)}
				}
				break
			}
			time.Sleep(time.Duration(retries) * time.Millisecond)
		}
		var plans []*importPlan
		var next []int
		inRound := make(map[string]bool)
		for _, i := range pending {
			if inRound[parts[i].TokenID] {
				next = append(next, i)
				continue
			}
			inRound[parts[i].TokenID] = true
			p, r := s.planImport(ctx, wf, i, parts[i])
			if p == nil {
				res[i] = r
				continue
			}
			plans = append(plans, p)
		}
		grouped := !retried
		retried = false
		for _, g := range groupPlans(plans, grouped) {
			retry, err := s.sendImport(ctx, wf, g)
			for _, p := range g {
				switch {
				case retry:
					next, retried = append(next, p.idx), true
				case err != nil:
					res[p.idx] = ImportResult{Outcome: wire.ImportFailed, Err: err}
				case p.part.Token != nil:
					res[p.idx] = ImportResult{Outcome: wire.ImportImported, Entries: p.written()}
					s.ids.put(p.part.TokenID, wf.id)
				default:
					res[p.idx] = ImportResult{Outcome: wire.ImportPartial, Entries: p.written()}
				}
			}
		}
		slices.Sort(next) // a token's parts in their order
		pending = next
	}
	return res, nil
}

// importPlan is what one part still has to write, from a read of what is stored.
type importPlan struct {
	idx        int
	part       *ImportPart
	histSeq    uint64 // sequence of the history subject's last entry (0: none)
	from       int    // index in part.Entries of the first entry to write
	stateSeq   uint64 // sequence of the token's last message in any place (0: none), final parts
	keys       []flow.KeyUse
	index      []*nats.Msg // the state's search index entries, final parts
	version    int         // the latest version, whose search attributes index follows
	versionSeq uint64      // the sequence of its latest-version record (0: none)
	timers     []extraMsg  // a live token's timers, final parts
}

func (p *importPlan) written() int { return len(p.part.Entries) - p.from }

// size is the messages the plan writes.
func (p *importPlan) size() int {
	n := p.written()
	if p.part.Token != nil {
		n += 2 + len(p.index) + len(p.timers) // state, event, index entries and timers
	}
	return n
}

// planImport reads what is stored of a part's token and returns what is
// left to write, or (nil and) the part's outcome when nothing is.
func (s *Store) planImport(ctx context.Context, wf *workflow, idx int, part *ImportPart) (*importPlan, ImportResult) {
	failed := func(err error) (*importPlan, ImportResult) {
		out := wire.ImportFailed
		if errors.Is(err, fail.ErrConflict) {
			out = wire.ImportConflict
		}
		return nil, ImportResult{Outcome: out, Err: err}
	}
	id := part.TokenID
	state, err := s.importedState(ctx, wf, id)
	var stateSeq uint64
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return failed(storeError(err))
	case state.Header.Get(subjects.HeaderTokenOp) == subjects.TokenOpDelete:
		stateSeq = state.Sequence
	default: // the token is stored: identical, or a conflict
		if part.Token == nil {
			return nil, ImportResult{Outcome: wire.ImportUnchanged}
		}
		cur, err := decodeState(state.Data)
		if err != nil {
			return failed(err)
		}
		if !sameImportedToken(cur.token(), part.Token) {
			return failed(fail.New(fail.Conflict, "token %s exists and differs from the file's (revision %d, place %s; the file's: revision %d, place %s)",
				id, cur.Revision, cur.Place, part.Token.Revision, part.Token.Place))
		}
		if n := len(part.Entries); n > 0 {
			if last, err := s.lastStoredEntry(ctx, wf, id); err != nil {
				return failed(err)
			} else if last == nil || last.N != part.First+n-1 || !sameEntry(last.entry(), part.Entries[n-1]) {
				return failed(fail.New(fail.Conflict, "token %s exists and its history differs from the file's", id))
			}
		}
		return nil, ImportResult{Outcome: wire.ImportUnchanged}
	}
	if err := s.indexImported(ctx, wf.id, id); err != nil {
		return failed(err)
	}
	last, err := s.lastStoredEntryMsg(ctx, wf, id)
	if err != nil {
		return failed(err)
	}
	p := &importPlan{idx: idx, part: part, stateSeq: stateSeq}
	stored := 0
	if last != nil {
		p.histSeq, stored = last.seq, last.entry.N
	}
	first, end := part.First, part.First+len(part.Entries)-1 // entry numbers of the part
	switch {
	case stored+1 < first:
		return failed(fail.New(fail.BadInput, "token %s: its stored history ends at entry %d, this part starts at entry %d: send the entries between", id, stored, first))
	case stored >= first && stored <= end:
		if !sameEntry(last.entry.entry(), part.Entries[stored-first]) {
			return failed(fail.New(fail.Conflict, "token %s: its stored entry %d differs from the file's (an import of another file?)", id, stored))
		}
	}
	p.from = min(max(stored+1-first, 0), len(part.Entries))
	if part.Token == nil {
		return p, ImportResult{}
	}
	if total := max(stored, end); total != part.Token.Records {
		if total > part.Token.Records {
			return failed(fail.New(fail.Conflict, "token %s: %d history entries are stored, the file's token has %d", id, total, part.Token.Records))
		}
		return failed(fail.New(fail.BadInput, "token %s has records %d, but its history has %d entries", id, part.Token.Records, total))
	}
	if p.keys, err = s.importedKeys(ctx, wf, part); err != nil {
		return failed(err)
	}
	if p.version, p.versionSeq, err = s.latest(ctx, wf); err != nil {
		return failed(err)
	}
	attrs, err := s.searchAttributes(ctx, wf, p.version)
	if err != nil {
		return failed(err)
	}
	p.index = indexMsgs(nil, nil, attrs, part.Token)
	ch := &change{token: part.Token.Clone()} // a live token's timers, scheduled with its state
	if err := s.planTimers(ctx, wf, nil, ch); err != nil {
		return failed(err)
	}
	p.timers, part.Token.Timers = ch.extra, ch.token.Timers
	return p, ImportResult{}
}

// importedState is the newest message of a token in any place, or its
// archived state.
func (s *Store) importedState(ctx context.Context, wf *workflow, id string) (*jetstream.RawStreamMsg, error) {
	state, err := s.rd.Last(ctx, wf.stream, subjects.TokenAnyPlace(wf.id, id))
	if err == nil && state.Header.Get(subjects.HeaderTokenOp) != subjects.TokenOpDelete {
		return state, nil
	}
	archived, aerr := s.rd.Last(ctx, wf.stream, subjects.ArchivedToken(wf.id, id))
	if aerr == nil {
		return archived, nil
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) && !errors.Is(aerr, jetstream.ErrMsgNotFound) {
		return nil, aerr
	}
	return state, err
}

// indexImported writes the token's index entry, or checks the one stored.
func (s *Store) indexImported(ctx context.Context, wfID, tokenID string) error {
	_, err := s.index.Create(ctx, tokenID, []byte(wfID))
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return storeError(err)
	}
	cur, err := s.WorkflowOf(ctx, tokenID)
	if err != nil {
		return err
	}
	if cur != wfID {
		return fail.New(fail.Conflict, "token id %s is taken by a token of another workflow", tokenID)
	}
	return nil
}

// storedEntryMsg is a stored history entry with its sequence.
type storedEntryMsg struct {
	seq   uint64
	entry *storedEntry
}

// lastStoredEntryMsg returns a token's last stored history entry (nil: none).
func (s *Store) lastStoredEntryMsg(ctx context.Context, wf *workflow, tokenID string) (*storedEntryMsg, error) {
	msg, err := s.rd.Last(ctx, wf.stream, subjects.TokenHistory(wf.id, tokenID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, storeError(err)
	}
	e, err := decodeEntry(msg.Data)
	if err != nil {
		return nil, err
	}
	return &storedEntryMsg{seq: msg.Sequence, entry: e}, nil
}

func (s *Store) lastStoredEntry(ctx context.Context, wf *workflow, tokenID string) (*storedEntry, error) {
	m, err := s.lastStoredEntryMsg(ctx, wf, tokenID)
	if m == nil || err != nil {
		return nil, err
	}
	return m.entry, nil
}

// importedKeys returns the idempotency keys the token's state remembers:
// those of its latest keyed history records (at most flow.MaxKeys), as a
// change remembers them. Records before the final part are read back from
// the stored history. A record does not say which revision it made, so
// each key is given the token's revision.
func (s *Store) importedKeys(ctx context.Context, wf *workflow, part *ImportPart) ([]flow.KeyUse, error) {
	var keys []flow.KeyUse
	add := func(r flow.TransitionRecord) {
		if r.IdempotencyKey != "" {
			keys = append(keys, flow.KeyUse{Key: r.IdempotencyKey, Hash: r.RequestHash, Revision: part.Token.Revision})
		}
	}
	if part.First > 1 {
		err := s.eachStoredEntry(ctx, wf, part.TokenID, func(e *storedEntry) bool {
			if e.N >= part.First {
				return false
			}
			add(e.entry().Record)
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	for _, e := range part.Entries {
		add(e.Record)
	}
	if n := len(keys); n > flow.MaxKeys {
		keys = keys[n-flow.MaxKeys:]
	}
	return keys, nil
}

// eachStoredEntry calls f on a token's stored history entries in order,
// until f returns false: direct batch gets on one server, leader reads
// when replicated.
func (s *Store) eachStoredEntry(ctx context.Context, wf *workflow, tokenID string, f func(*storedEntry) bool) error {
	hist, stream := subjects.TokenHistory(wf.id, tokenID), subjects.StreamName(wf.id)
	for after := uint64(0); ; {
		if s.rd.Leader() {
			msg, err := s.rd.Next(ctx, stream, after+1, hist)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return nil
			}
			if err != nil {
				return storeError(err)
			}
			after = msg.Sequence
			e, err := decodeEntry(msg.Data)
			if err != nil || !f(e) {
				return err
			}
			continue
		}
		it, err := jetstreamext.GetBatch(ctx, s.js, stream, 1000, jetstreamext.GetBatchSeq(after+1), jetstreamext.GetBatchSubject(hist))
		if err != nil {
			return storeError(err)
		}
		read := 0
		for msg, err := range it {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				return nil
			}
			if err != nil {
				return storeError(err)
			}
			read, after = read+1, msg.Sequence
			e, err := decodeEntry(msg.Data)
			if err != nil || !f(e) {
				return err
			}
		}
		if read == 0 {
			return nil
		}
	}
}

// groupPlans packs plans into batches of at most maxBatchMsgs messages, in
// order; a plan larger than that goes alone (it is sent in chunks). With
// grouped false every plan goes alone.
func groupPlans(plans []*importPlan, grouped bool) [][]*importPlan {
	var out [][]*importPlan
	var cur []*importPlan
	n := 0
	for _, p := range plans {
		if !grouped || p.size() > maxBatchMsgs {
			if len(cur) > 0 {
				out, cur, n = append(out, cur), nil, 0
			}
			out = append(out, []*importPlan{p})
			continue
		}
		if n+p.size() > maxBatchMsgs {
			out, cur, n = append(out, cur), nil, 0
		}
		cur, n = append(cur, p), n+p.size()
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// sendImport writes a group of plans: one atomic batch, or for a plan
// larger than a batch its chunks one after another. retry reports that a
// batch failed on a sequence (the stream moved on, or a token's subjects
// changed since they were read): the group is planned again.
func (s *Store) sendImport(ctx context.Context, wf *workflow, group []*importPlan) (retry bool, err error) {
	if len(group) == 1 && group[0].size() > maxBatchMsgs {
		return s.sendChunked(ctx, wf, group[0])
	}
	last, err := s.streamLast(ctx, wf)
	if err != nil {
		return false, err
	}
	var msgs []*nats.Msg
	for _, p := range group {
		m, err := s.importMsgs(wf, p, p.part.Entries[p.from:], p.histSeq, last+uint64(len(msgs)), true)
		if err != nil {
			return false, err
		}
		msgs = append(msgs, m...)
	}
	if len(msgs) == 0 {
		return false, nil
	}
	_, err = s.publishImport(ctx, msgs, last)
	return jserr.WrongSequence(err), errUnlessSequence(err)
}

// sendChunked writes a plan too large for one batch: its entries in
// chunks, then the last ones with the state.
func (s *Store) sendChunked(ctx context.Context, wf *workflow, p *importPlan) (bool, error) {
	entries, histSeq := p.part.Entries[p.from:], p.histSeq
	first := p.part.First + p.from
	for len(entries) > 0 || p.part.Token != nil {
		room := maxBatchMsgs
		if p.part.Token != nil {
			room -= 2 + len(p.index) + len(p.timers) // state, event, index entries and timers
		}
		final := len(entries) <= room
		chunk := entries[:min(len(entries), room)]
		if !final {
			chunk = entries[:maxBatchMsgs]
		}
		last, err := s.streamLast(ctx, wf)
		if err != nil {
			return false, err
		}
		sub := &importPlan{idx: p.idx, part: &ImportPart{TokenID: p.part.TokenID, First: first, Entries: chunk}, histSeq: histSeq,
			stateSeq: p.stateSeq, keys: p.keys}
		if final {
			sub.part.Token, sub.part.Event = p.part.Token, p.part.Event
			sub.index, sub.version, sub.versionSeq, sub.timers = p.index, p.version, p.versionSeq, p.timers
		}
		msgs, err := s.importMsgs(wf, sub, chunk, histSeq, last, final)
		if err != nil {
			return false, err
		}
		seq, err := s.publishImport(ctx, msgs, last)
		if err != nil {
			return jserr.WrongSequence(err), errUnlessSequence(err)
		}
		if final {
			return false, nil
		}
		histSeq, first, entries = seq, first+len(chunk), entries[len(chunk):]
	}
	return false, nil
}

// importMsgs lays out a plan's messages after stream sequence last: its
// entries (the first with the history subject's compare-and-swap) and,
// with final and a state, the state and its event.
func (s *Store) importMsgs(wf *workflow, p *importPlan, entries []flow.Entry, histSeq, last uint64, final bool) ([]*nats.Msg, error) {
	limit := s.js.Conn().MaxPayload() - headerRoom
	hist := subjects.TokenHistory(wf.id, p.part.TokenID)
	number := p.part.First + (len(p.part.Entries) - len(entries))
	var msgs []*nats.Msg
	seq := last
	for i := range entries {
		seq++
		data, err := json.Marshal(toStoredEntry(&entries[i], number+i, seq))
		if err != nil {
			return nil, fail.Wrap(fail.Internal, err, "encode history entry of token "+p.part.TokenID)
		}
		if int64(len(data)) > limit {
			return nil, fail.New(fail.BadInput, "token %s: history entry %d takes %d bytes, the limit is %d", p.part.TokenID, number+i, len(data), limit)
		}
		m := nats.NewMsg(hist)
		m.Data = data
		if i == 0 {
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(histSeq, 10))
		}
		msgs = append(msgs, m)
	}
	if !final || p.part.Token == nil {
		return msgs, nil
	}
	for _, x := range p.timers { // before the state, as the committer writes them
		msgs = append(msgs, x.msg())
		seq++
	}
	t := p.part.Token.Clone()
	seq++
	t.NatsSequence, t.NatsSubject, t.NatsTimestamp = seq, subjects.TokenState(wf.id, t.Place, t.ID), time.Now().UTC()
	if t.ArchivedAt != nil {
		t.NatsSubject = subjects.ArchivedToken(wf.id, t.ID)
	}
	t.Keys, t.IndexVersion = p.keys, p.version
	data, err := encodeState(t)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fail.New(fail.BadInput, "token %s too large to store: %d bytes of JSON (its data and metadata), the limit is %d", t.ID, len(data), limit)
	}
	state := nats.NewMsg(t.NatsSubject)
	state.Data = data
	state.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	state.Header.Set(subjects.HeaderTokenRev, strconv.FormatUint(t.Revision, 10))
	if t.ArchivedAt == nil {
		state.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, subjects.TokenAnyPlace(wf.id, t.ID))
		state.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(p.stateSeq, 10))
	} else { // its own subject: the archive
		state.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	}
	ev := p.part.Event
	ev.NatsSequence, ev.Revision = seq, t.Revision
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fail.Wrap(fail.Internal, err, "encode event of token "+t.ID)
	}
	evm := nats.NewMsg(subjects.LifecycleEvents(wf.id)) // no message id: the state's compare-and-swap makes it once
	evm.Data = body
	// The index entries are of the latest version's attributes only while
	// no version is stored after them (the batch's pin was read after them).
	evm.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, subjects.LatestVersion(wf.id))
	evm.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(p.versionSeq, 10))
	if s.opts.EventTTL >= time.Second {
		evm.Header.Set(jetstream.MsgTTLHeader, s.opts.EventTTL.String())
	}
	return append(append(msgs, state, evm), p.index...), nil
}

// streamLast reads the stream's last sequence.
func (s *Store) streamLast(ctx context.Context, wf *workflow) (uint64, error) {
	info, err := wf.stream.Info(ctx)
	if err != nil {
		return 0, storeError(err)
	}
	return info.State.LastSeq, nil
}

// publishImport sends msgs as one atomic batch pinned after sequence last
// and returns the sequence of its last message.
func (s *Store) publishImport(ctx context.Context, msgs []*nats.Msg, last uint64) (uint64, error) {
	msgs[0].Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(last, 10))
	ctx, cancel := context.WithTimeout(ctx, 2*commitTimeout)
	defer cancel()
	ack, err := jetstreamext.PublishMsgBatch(ctx, s.js, msgs, jetstreamext.BatchFlowControl{AckTimeout: commitTimeout})
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// errUnlessSequence classifies err, except a failed sequence (retried).
func errUnlessSequence(err error) error {
	if err == nil || jserr.WrongSequence(err) {
		return nil
	}
	return storeError(err)
}

// sameImportedToken reports whether a stored token is the one a file
// holds: every field but the Nats* ones and the remembered keys.
func sameImportedToken(a, b *flow.Token) bool {
	return a.ID == b.ID && a.WorkflowID == b.WorkflowID && a.WorkflowVersion == b.WorkflowVersion && a.Place == b.Place &&
		sameJSON(a.Data, b.Data) && sameJSON(a.Metadata, b.Metadata) && a.CreatedAt.Equal(b.CreatedAt) &&
		a.UpdatedAt.Equal(b.UpdatedAt) && a.Revision == b.Revision && a.Records == b.Records
}

// sameEntry reports whether a stored history entry is one a file holds:
// every field but the record's natsSequence.
func sameEntry(a, b flow.Entry) bool {
	ra, rb := a.Record, b.Record
	if ra.FromPlace != rb.FromPlace || ra.ToPlace != rb.ToPlace || ra.TransitionID != rb.TransitionID || !ra.Timestamp.Equal(rb.Timestamp) ||
		ra.TriggeredBy != rb.TriggeredBy || ra.TriggeredByClaim != rb.TriggeredByClaim || !sameJSON(ra.Metadata, rb.Metadata) ||
		ra.IdempotencyKey != rb.IdempotencyKey || ra.RequestHash != rb.RequestHash || (a.Event == nil) != (b.Event == nil) {
		return false
	}
	if a.Event == nil {
		return true
	}
	ea, eb := a.Event, b.Event
	return ea.Timestamp.Equal(eb.Timestamp) && ea.Transition == eb.Transition && ea.From == eb.From && ea.To == eb.To && sameJSON(ea.Data, eb.Data)
}

// sameJSON reports whether two JSON documents hold the same value (absent
// and empty alike).
func sameJSON(a, b json.RawMessage) bool {
	a, b = bytes.TrimSpace(a), bytes.TrimSpace(b)
	if bytes.Equal(a, b) {
		return true
	}
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

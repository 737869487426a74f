package workflow

import (
	"context"
	"encoding/json"
	"errors"
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
	"github.com/cbnats/circuitbreaker/shared/tenant"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Versions. A definition never changes: an update stores a new version,
// once, on its own subject (subjects.DefinitionVersion), with the
// workflow's latest-version record (subjects.LatestVersion) and its
// workflow_updated event, in one atomic batch. The version subject's
// compare-and-swap (it must not exist yet) makes exactly one of two
// concurrent updates of the same version win. The stream is the
// authority; the catalogue follows it with the latest version.

// maxUpdateAttempts bounds the retries of an update whose batch lost the
// race for the stream's last sequence to token writes (not to another
// update: that is a conflict).
const maxUpdateAttempts = 50

// latestVersion is a workflow's latest version as its stream records it.
func (s *store) latestVersion(ctx context.Context, st jetstream.Stream, id string) (int, error) {
	msg, err := s.rd.Last(ctx, st, subjects.LatestVersion(id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 1, nil
	}
	if err != nil {
		return 0, storeError(err)
	}
	var rec struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(msg.Data, &rec); err != nil || rec.Version < 1 {
		return 0, fail.New(fail.Internal, "unreadable latest-version record")
	}
	return rec.Version, nil
}

func (s *store) stream(ctx context.Context, id string) (jetstream.Stream, error) {
	st, err := s.js.Stream(ctx, subjects.StreamName(id))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, tenant.WorkflowNotFound(id)
	}
	return st, storeError(err)
}

// version reads version v of a workflow from its stream.
func (s *store) version(ctx context.Context, id string, v int) (*flow.Definition, error) {
	st, err := s.stream(ctx, id)
	if err != nil {
		return nil, err
	}
	msg, err := s.rd.Last(ctx, st, subjects.DefinitionVersion(id, v))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fail.New(fail.NotFound, "Workflow %s has no version %d", id, v)
	}
	if err != nil {
		return nil, storeError(err)
	}
	return decode(msg.Data)
}

// versions reads every version of a workflow, oldest first.
func (s *store) versions(ctx context.Context, id string) ([]*flow.Definition, error) {
	st, err := s.stream(ctx, id)
	if err != nil {
		return nil, err
	}
	latest, err := s.latestVersion(ctx, st, id)
	if err != nil {
		return nil, err
	}
	out := make([]*flow.Definition, 0, latest)
	for v := 1; v <= latest; v++ {
		d, err := s.version(ctx, id, v)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// addVersion stores d (version n of its workflow, n > 1) if version n-1
// is still the latest: fail.Conflict otherwise. It reports whether the
// version started a build of the search index (it adds attributes).
func (s *store) addVersion(ctx context.Context, d *flow.Definition) (bool, error) {
	st, err := s.stream(ctx, d.ID)
	if err != nil {
		return false, err
	}
	body, err := json.Marshal(d)
	if err != nil {
		return false, fail.Wrap(fail.Internal, err, "encode definition")
	}
	if err := s.takeSchedules(ctx, st, d); err != nil {
		return false, err
	}
	for attempt := 0; ; attempt++ {
		building, err := s.publishVersion(ctx, st, d, body)
		if !jserr.WrongSequence(err) {
			if err != nil {
				return false, err
			}
			return building, s.catalogue(ctx, d, body)
		}
		if _, e := s.rd.Last(ctx, st, subjects.DefinitionVersion(d.ID, d.Version)); e == nil || attempt == maxUpdateAttempts {
			latest, _ := s.latestVersion(ctx, st, d.ID)
			s.repairLatest(ctx, d.ID, latest)
			return false, fail.New(fail.Conflict, "workflow %s is at version %d, not %d: read it and update that", d.ID, latest, d.Version-1)
		}
		time.Sleep(time.Duration(attempt) * 100 * time.Microsecond) // token writes moved the stream on
	}
}

// takeSchedules lets a stream take message schedules before the first
// version with timers is stored (see streamConfig).
func (s *store) takeSchedules(ctx context.Context, st jetstream.Stream, d *flow.Definition) error {
	if !d.HasTimers() {
		return nil
	}
	info, err := st.Info(ctx)
	if err != nil || info.Config.AllowMsgSchedules {
		return storeError(err)
	}
	cfg := info.Config
	cfg.AllowMsgSchedules, cfg.Discard = true, jetstream.DiscardOld
	_, err = s.js.UpdateStream(ctx, cfg)
	return storeError(err)
}

// publishVersion writes the batch of version d: its definition (once),
// the latest-version record, the workflow_updated event, whose
// nats_sequence is the definition's sequence (the batch pins the stream's
// last sequence so it knows it), and, when d adds search attributes, the
// search index record that starts their build. It reports whether it
// wrote that record.
func (s *store) publishVersion(ctx context.Context, st jetstream.Stream, d *flow.Definition, body []byte) (bool, error) {
	info, err := st.Info(ctx)
	if err != nil {
		return false, storeError(err)
	}
	index, err := s.searchIndexMsg(ctx, st, d, info.State.LastSeq+1)
	if err != nil {
		return false, err
	}
	def := nats.NewMsg(subjects.DefinitionVersion(d.ID, d.Version))
	def.Data = body
	def.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	def.Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(info.State.LastSeq, 10))
	latest := nats.NewMsg(subjects.LatestVersion(d.ID))
	latest.Data, _ = json.Marshal(map[string]int{"version": d.Version})
	latest.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	ev, err := json.Marshal(wire.Event{EventType: wire.EventWorkflowUpdated, WorkflowID: d.ID,
		Timestamp: d.UpdatedAt, NatsSequence: info.State.LastSeq + 1, Revision: uint64(d.Version)})
	if err != nil {
		return false, fail.Wrap(fail.Internal, err, "encode event")
	}
	evm := nats.NewMsg(subjects.LifecycleEvents(d.ID))
	evm.Data = ev
	evm.Header.Set(jetstream.MsgIDHeader, "workflow:"+d.ID+":"+strconv.Itoa(d.Version))
	if s.opts.EventTTL >= time.Second {
		evm.Header.Set(jetstream.MsgTTLHeader, s.opts.EventTTL.String())
	}
	msgs := []*nats.Msg{def, latest, evm}
	if index != nil {
		msgs = append(msgs, index)
	}
	_, err = jetstreamext.PublishMsgBatch(ctx, s.js, msgs, jetstreamext.BatchFlowControl{AckFirst: false, AckTimeout: 5 * time.Second})
	return index != nil, err
}

// searchIndexMsg is the search index record (wire.SearchIndex) of version
// d, stored at sequence seq, when d adds search attributes to the version
// before it and the workflow has tokens: a build from the start, of those
// and of any an unfinished build still had. nil when d adds none, or there
// is no token to index (the record stays as it is; the batch pins the
// stream, so no token is created meanwhile).
func (s *store) searchIndexMsg(ctx context.Context, st jetstream.Stream, d *flow.Definition, seq uint64) (*nats.Msg, error) {
	prev, err := s.version(ctx, d.ID, d.Version-1)
	if err != nil {
		return nil, err
	}
	building := flow.AddedSearchAttributes(prev, d)
	if len(building) == 0 {
		return nil, nil
	}
	if _, err := s.rd.Last(ctx, st, subjects.AllTokens(d.ID)); errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, storeError(err)
	}
	msg, err := s.rd.Last(ctx, st, subjects.SearchIndexState(d.ID))
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, storeError(err)
	}
	if err == nil {
		var cur wire.SearchIndex
		if json.Unmarshal(msg.Data, &cur) == nil && cur.State == wire.IndexBuilding {
			for _, p := range cur.Building {
				if _, ok := d.SearchAttribute(p); ok && !slices.Contains(building, p) {
					building = append(building, p)
				}
			}
		}
	}
	now := d.UpdatedAt
	body, err := json.Marshal(wire.SearchIndex{WorkflowID: d.ID, State: wire.IndexBuilding, Version: d.Version, Building: building,
		Until: seq, StartedAt: &now, UpdatedAt: &now})
	if err != nil {
		return nil, fail.Wrap(fail.Internal, err, "encode search index record")
	}
	m := nats.NewMsg(subjects.SearchIndexState(d.ID))
	m.Data = body
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	return m, nil
}

// repairLatest puts the stream's latest version into the catalogue, which
// lags it after a crash between the two writes.
func (s *store) repairLatest(ctx context.Context, id string, latest int) {
	if d, err := s.version(ctx, id, latest); err == nil {
		b, _ := json.Marshal(d)
		_ = s.catalogue(ctx, d, b)
	}
}

// catalogue makes the catalogue hold d unless it holds a later version
// already (two updates may finish in either order).
func (s *store) catalogue(ctx context.Context, d *flow.Definition, body []byte) error {
	key := catalogKey(d.ID)
	for {
		e, err := s.catalog.Get(ctx, key)
		if err != nil {
			return storeError(err)
		}
		cur, err := decode(e.Value())
		if err != nil || cur.Version >= d.Version {
			return err
		}
		_, err = s.catalog.Update(ctx, key, body, e.Revision())
		if !errors.Is(err, jetstream.ErrKeyExists) && !jserr.WrongSequence(err) {
			return storeError(err)
		}
	}
}

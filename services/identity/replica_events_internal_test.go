package identity

import (
	"encoding/json"
	"testing"
	"time"
)

// TestReplicaLocalEventDropsOriginStateTimes: the local event of another
// centre's change carries neither the origin's state time nor a local
// state time the origin put in it: only this centre sets local_state_at,
// which its ticket component takes as the time a disable or lock
// happened here; a past one sent by a peer would keep sessions the
// disable ends (review sec32d L1).
func TestReplicaLocalEventDropsOriginStateTimes(t *testing.T) {
	s := &Service{now: time.Now}
	payload := []byte(`{"entity":"lock","op":"disabled","id":"p1","replica":{"centre":"l1"},` +
		`"data":{"state_at":"1971-01-01T00:00:00Z","local_state_at":"1971-01-01T00:00:00Z","reason":"x"}}`)
	ev := s.replicaLocalEvent("l1", ReplicaChange{EventID: "e1", Subject: "uias.changes.identity.lock.disabled", Payload: payload})
	if ev == nil {
		t.Fatal("no local event")
	}
	var p struct {
		Data   map[string]any `json:"data"`
		Origin string         `json:"origin"`
	}
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Data["state_at"]; ok {
		t.Errorf("the origin's state_at kept: %s", ev.Payload)
	}
	if _, ok := p.Data[LocalStateAtKey]; ok {
		t.Errorf("the origin's %s kept: %s", LocalStateAtKey, ev.Payload)
	}
	if p.Data["reason"] != "x" || p.Origin != "l1" {
		t.Errorf("the rest of the change: %s", ev.Payload)
	}
}

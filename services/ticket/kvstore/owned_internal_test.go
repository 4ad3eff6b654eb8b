package kvstore

import (
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/services/ticket"
)

// The order of kept keys (without pointers) still drops an expired ticket
// at the next put, whether or not it was validated, and a key longer than
// a ticket's is refused, not cut.
func TestOwnedDropsExpiredInOrder(t *testing.T) {
	var o owned
	o.init("r1", 100, time.Minute)
	t0 := time.Now()
	st := func(sess string) *ticket.Ticket { return &ticket.Ticket{Kind: ticket.KindST, SessionID: sess} }
	for _, k := range []string{"a", "b", strings.Repeat("c", maxKeyLen)} {
		if err := o.put(k, st("s1"), t0.Add(time.Second), t0, 0); err != nil {
			t.Fatal(k, err)
		}
	}
	if _, ok := o.take("b", t0); !ok {
		t.Fatal("b not kept")
	}
	if err := o.put("d", st("s2"), t0.Add(time.Hour), t0.Add(2*time.Second), 0); err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	_, a := o.tickets["a"]
	_, c := o.tickets[strings.Repeat("c", maxKeyLen)]
	sessions, kept := len(o.bySession), len(o.tickets)
	o.mu.Unlock()
	if a || c || kept != 1 || sessions != 1 {
		t.Fatalf("after expiry: a %v, c %v, %d kept, %d sessions indexed; want only d", a, c, kept, sessions)
	}
	if err := o.put(strings.Repeat("e", maxKeyLen+1), st("s2"), t0.Add(time.Hour), t0, 0); err == nil {
		t.Fatal("a key longer than a ticket's was taken")
	}
}

// TestOwnedPeek: peek answers a copy of a kept ticket, leaves it kept,
// and answers nothing for an expired one.
func TestOwnedPeek(t *testing.T) {
	var o owned
	o.init("r1", 100, time.Minute)
	t0 := time.Now()
	if err := o.put("a", &ticket.Ticket{Kind: ticket.KindST, SessionID: "s1", UserID: "u1"}, t0.Add(time.Second), t0, 0); err != nil {
		t.Fatal(err)
	}
	got, ok := o.peek("a", t0)
	if !ok || got.UserID != "u1" {
		t.Fatalf("peek: %+v %v", got, ok)
	}
	got.UserID = "changed" // a copy: the kept record is not touched
	if k, ok := o.take("a", t0); !ok || k.t.UserID != "u1" {
		t.Fatalf("take after peek: %+v %v", k.t, ok)
	}
	if err := o.put("b", &ticket.Ticket{Kind: ticket.KindST, SessionID: "s1"}, t0.Add(time.Second), t0, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := o.peek("b", t0.Add(time.Second)); ok {
		t.Fatal("an expired ticket peeked")
	}
}

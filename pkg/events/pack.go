package events

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A pack is one JetStream message carrying several events of one subject
// (the in-memory Publisher sends the access records of API calls so: one
// message, one stream write and one acknowledgement for up to MaxPack
// records instead of one each). Its Nats-Msg-Id is PackID of its events;
// the header HeaderPack gives the number of events and the data holds,
// for each event in order: its id, its type, its time (Unix nanoseconds, 0
// for none) and its payload, the strings and the payload each preceded by
// their length (unsigned varints; the time a signed varint). Readers of
// the AUDIT stream take the events of any message with EventsFromMsg.
const (
	// HeaderPack marks a pack; its value is the number of events.
	HeaderPack = "Uias-Event-Pack"
	// MaxPack is the most events a Publisher puts in one pack.
	MaxPack = 64
	// maxPackBytes bounds a pack's data (NATS refuses messages over its
	// max_payload, 1 MiB by default): a pack is closed before it would pass it.
	maxPackBytes = 256 << 10
)

// PackID is the message id of a pack of n events whose first is first: a
// pack published again with the same events is deduplicated by JetStream.
func PackID(first string, n int) string { return first + "+" + strconv.Itoa(n) }

// PackMsg is the message of a pack of evs (all of one subject, at least one).
func PackMsg(evs []Event) *nats.Msg {
	return packMsgInto(nil, evs)
}

// packSize is the most bytes the data of a pack of evs takes.
func packSize(evs []Event) int {
	size := 0
	for _, ev := range evs {
		size += len(ev.ID) + len(ev.Type) + len(ev.Payload) + 4*binary.MaxVarintLen64
	}
	return size
}

// packMsgInto is PackMsg with the data written into buf (from its start)
// when it has room for it, else into a new array.
func packMsgInto(buf []byte, evs []Event) *nats.Msg {
	b := buf[:0]
	if size := packSize(evs); cap(b) < size {
		b = make([]byte, 0, size)
	}
	for _, ev := range evs {
		b = appendString(b, ev.ID)
		b = appendString(b, ev.Type)
		var t int64
		if !ev.Time.IsZero() {
			t = ev.Time.UnixNano()
		}
		b = binary.AppendVarint(b, t)
		b = binary.AppendUvarint(b, uint64(len(ev.Payload)))
		b = append(b, ev.Payload...)
	}
	msg := nats.NewMsg(evs[0].Subject)
	msg.Data = b
	msg.Header.Set(HeaderPack, strconv.Itoa(len(evs)))
	return msg
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errBadPack reports a pack whose data does not hold what its header says.
var errBadPack = errors.New("events: malformed event pack")

// Unpack returns the events of a message given its subject, headers and
// data: those of a pack (HeaderPack), or the one event of any other
// message (as EventFromMsg).
func Unpack(subject string, h nats.Header, data []byte) ([]Event, error) {
	ns := h.Get(HeaderPack)
	if ns == "" {
		ev, err := eventOf(subject, h, data)
		return []Event{ev}, err
	}
	n, err := strconv.Atoi(ns)
	if err != nil || n <= 0 || n > len(data) {
		return nil, fmt.Errorf("%w: %s %q", errBadPack, HeaderPack, ns)
	}
	out := make([]Event, 0, n)
	for range n {
		var ev Event
		var ok bool
		ev.Subject = subject
		if ev.ID, data, ok = readString(data); !ok {
			return nil, errBadPack
		}
		if ev.Type, data, ok = readString(data); !ok {
			return nil, errBadPack
		}
		t, k := binary.Varint(data)
		if k <= 0 {
			return nil, errBadPack
		}
		data = data[k:]
		if t != 0 {
			ev.Time = time.Unix(0, t).UTC()
		}
		l, k := binary.Uvarint(data)
		if k <= 0 || uint64(len(data)-k) < l {
			return nil, errBadPack
		}
		ev.Payload = data[k : k+int(l) : k+int(l)]
		data = data[k+int(l):]
		out = append(out, ev)
	}
	if len(data) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last event", errBadPack, len(data))
	}
	return out, nil
}

func readString(b []byte) (string, []byte, bool) {
	l, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < l {
		return "", nil, false
	}
	return string(b[k : k+int(l)]), b[k+int(l):], true
}

// EventsFromMsg returns the events a JetStream message carries: several
// for a pack, else one (EventFromMsg).
func EventsFromMsg(msg jetstream.Msg) ([]Event, error) {
	return Unpack(msg.Subject(), msg.Headers(), msg.Data())
}

// eventOf is EventFromMsg of a message's parts.
func eventOf(subject string, h nats.Header, data []byte) (Event, error) {
	ev := Event{ID: h.Get(jetstream.MsgIDHeader), Subject: subject, Type: h.Get(HeaderType), Payload: data}
	if ts := h.Get(HeaderTime); ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return ev, fmt.Errorf("events: message %q has an invalid %s header: %w", ev.ID, HeaderTime, err)
		}
		ev.Time = t
	}
	return ev, nil
}

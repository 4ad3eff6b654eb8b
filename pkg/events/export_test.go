package events

// RelayLockKey is the PostgreSQL advisory lock key of the relays, for tests
// that hold it as another replica would.
var RelayLockKey = relayLockKey

// BuildQueued builds the events queued with AddLater, as Run does before
// it publishes, and returns the queue (tests of the payload buffer).
func (p *Publisher) BuildQueued() []Event {
	p.build()
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Event(nil), p.queue...)
}

// Published drops the queue as if all of it was published.
func (p *Publisher) Published() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.queue)
	p.queue = p.queue[:0]
}

// LockKeyOf is the advisory lock key of the relays of subjects.
var LockKeyOf = lockKeyOf

package events

// RelayLockKey is the PostgreSQL advisory lock key of the relays, for tests
// that hold it as another replica would.
var RelayLockKey = relayLockKey

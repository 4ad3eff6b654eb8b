-- Review rr29 B2: where level 1's receiver is in a peer's AUDIT_<PEER>
-- stream is its durable consumer's alone (acknowledged after the
-- transaction); a batch delivered again is told by the records' seq. The
-- stream position written here was never read: it goes.
ALTER TABLE audit_peers DROP COLUMN stream_seq;

-- Review rr29 B2: where level 1's receiver is in a peer's AUDIT_<PEER>
-- stream is its durable consumer's alone (acknowledged after the
-- transaction); a batch delivered again is told by the records' seq. The
-- stream position written here was never read: it goes.
ALTER TABLE audit_peers DROP COLUMN stream_seq;

-- Review rr29 B11: the peer records get the own table's app_id and
-- client_ip query indexes (0002), so a filter on them searches instead of
-- scanning every level-2 log held (layout test: every index of
-- audit_records has a peer twin).
CREATE INDEX audit_peer_records_app ON audit_peer_records (app_id, time_ms, origin, seq);
CREATE INDEX audit_peer_records_client_ip ON audit_peer_records (client_ip, time_ms, origin, seq);

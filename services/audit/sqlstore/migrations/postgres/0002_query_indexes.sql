-- Queries are newest first (time, then log order) with keyset pages on
-- (time_ms, seq); each filter has an index that serves it in that order.
CREATE INDEX audit_records_time ON audit_records (time_ms, seq);
CREATE INDEX audit_records_actor ON audit_records (actor, time_ms, seq);
CREATE INDEX audit_records_subject ON audit_records (subject, time_ms, seq);
CREATE INDEX audit_records_app ON audit_records (app_id, time_ms, seq);
CREATE INDEX audit_records_api ON audit_records (api, time_ms, seq);
CREATE INDEX audit_records_client_ip ON audit_records (client_ip, time_ms, seq);

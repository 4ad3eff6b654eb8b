package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/uias/uias/pkg/apierr"
)

// ReasonUnavailable is the error reason of ErrUnavailable.
const ReasonUnavailable = "STORAGE_UNAVAILABLE"

func init() {
	apierr.Register(
		apierr.Reason{Name: ReasonUnavailable, Code: apierr.Unavailable, Legacy: -6,
			Doc: "The component's database is unreachable; retry with back-off."},
		apierr.Reason{Name: ReasonBadPageToken, Code: apierr.InvalidArgument, Legacy: -5,
			Doc: "A list call's page_token was not issued by the previous page."},
	)
}

// Store errors. Every store (of every component) returns these, wrapped or
// bare, so the domain can tell a missing row from a conflict from a storage
// fault, and the error funnel (apierr) answers them without further mapping:
// they are domain errors with the generic reasons NOT_FOUND and
// ALREADY_EXISTS and the reason STORAGE_UNAVAILABLE. Use NotFound and
// Conflict for a message that names the object; compare with errors.Is.
var (
	ErrNotFound    = apierr.New(apierr.NotFound, "NOT_FOUND", "not found")
	ErrConflict    = apierr.New(apierr.AlreadyExists, "ALREADY_EXISTS", "already exists")
	ErrUnavailable = apierr.New(apierr.Unavailable, ReasonUnavailable, "storage is unavailable, try again later")
)

// NotFound returns ErrNotFound with the message "<what> not found" (what
// names the object, e.g. "user"; never a value).
func NotFound(what string) error { return ErrNotFound.WithMessage(what + " not found") }

// Conflict returns ErrConflict with msg, a caller-facing sentence naming the
// clashing key ("login name already exists"; never a value).
func Conflict(msg string) error { return ErrConflict.WithMessage(msg) }

// Classify is the one place where driver errors (SQLite and PostgreSQL)
// become store errors:
//
//   - nil, errors that already carry a reason (*apierr.Error) and context
//     errors are returned unchanged;
//   - sql.ErrNoRows becomes ErrNotFound;
//   - a unique or primary-key violation becomes ErrConflict;
//   - unavailability (IsUnavailable) becomes ErrUnavailable;
//   - anything else is returned unchanged: the error funnel answers it as an
//     internal error and logs it.
//
// The driver error stays the cause (for logs, errors.Is and errors.As); its
// text never reaches a caller.
func Classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	if _, ok := apierr.As(err); ok {
		return err
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrNotFound.WithCause(err)
	case IsUniqueViolation(err):
		return ErrConflict.WithCause(err)
	case IsUnavailable(err):
		return ErrUnavailable.WithCause(err)
	}
	return err
}

// IsUniqueViolation reports whether err is a unique or primary-key constraint violation
// (SQLite SQLITE_CONSTRAINT_UNIQUE / SQLITE_CONSTRAINT_PRIMARYKEY, PostgreSQL 23505).
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	return false
}

// IsUniqueViolationOn reports whether err is a unique violation
// (IsUniqueViolation) of the one-column unique index or constraint index
// on table.column: PostgreSQL names the index (or constraint), SQLite the
// column ("UNIQUE constraint failed: table.column"). A store that maps one
// unique key to a reason of its own asks it (the race backstop behind its
// own look-up).
func IsUniqueViolationOn(err error, index, table, column string) bool {
	if !IsUniqueViolation(err) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.ConstraintName == index
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		const failed = "UNIQUE constraint failed: "
		msg := se.Error()
		i := strings.Index(msg, failed)
		if i < 0 {
			return false
		}
		cols := msg[i+len(failed):]
		if j := strings.Index(cols, " ("); j >= 0 { // the code the driver appends
			cols = cols[:j]
		}
		return strings.TrimSpace(cols) == table+"."+column
	}
	return false
}

// IsUnavailable reports whether err means the database cannot be reached right now
// (connection refused/reset/closed, server shutting down, database handle closed, SQLite
// busy or unable to open the file), i.e. the request may succeed later. Errors caused by
// the statement itself (syntax, constraints, ...) are not unavailability.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, ErrWriteTurn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, net.ErrClosed) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"): // connection exception
			return true
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // admin/crash shutdown, cannot connect now
			return true
		case pe.Code == "53300": // too many connections
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN:
			return true
		}
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	msg := err.Error()
	// database/sql does not export these.
	return strings.Contains(msg, "sql: database is closed") ||
		strings.Contains(msg, "database is closed") ||
		strings.Contains(msg, "conn closed") ||
		strings.Contains(msg, "connection refused")
}

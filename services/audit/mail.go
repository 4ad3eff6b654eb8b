package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ReportMailer sends the scheduled reports by e-mail once they are
// written (the maritime design's "自动发送用户选择的相关报表到管理员邮箱"):
// one message a report, its chosen formats attached, to the chosen
// addresses.
//
// What was sent is kept in the reports' directory beside the files, so
// that a restart sends nothing twice and several replicas sharing the
// directory send each report once: "<report>.mailed" once a message is
// accepted by the mail server, "<report>.mail-claim" while one replica is
// sending it (a claim older than ClaimFor is taken to be a crashed
// sender's and taken over). Deleting a ".mailed" file sends that report
// again. Reports already in the directory when mailing is first set up
// are not sent, except the newest of each kind (the dates are kept in
// MailSinceFile).
type ReportMailer struct {
	// Reporter names and places the files.
	Reporter *Reporter
	// Periods and Formats are the reports mailed and the files attached
	// (a report is sent once all of them are written).
	Periods []Period
	Formats []Format
	// From and To are the envelope and header addresses (bare addresses,
	// already checked).
	From string
	To   []string
	// Send hands one message to the mail server.
	Send func(ctx context.Context, from string, to []string, msg []byte) error
	// ClaimFor is how long a replica's claim on a report holds (default
	// 10 minutes).
	ClaimFor time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// MailSinceFile holds, per kind, the date of the oldest report mailing
// sends (the newest one on disk when mailing was first set up).
const MailSinceFile = "audit-mail-since"

// The files of a report's mailing: sent, being sent, refused for good by
// the mail server.
const (
	mailedExt     = ".mailed"
	claimExt      = ".mail-claim"
	mailFailedExt = ".mail-failed"
)

// RejectedError is a mail server's permanent refusal (5xx) of a message's
// recipients or data: sending it again would be refused again.
type RejectedError struct{ Err error }

func (e *RejectedError) Error() string { return "refused for good: " + e.Err.Error() }
func (e *RejectedError) Unwrap() error { return e.Err }

// maxMailsPerRun bounds the reports one run sends (a month of days and two
// of weeks: what the reporter writes after downtime).
const maxMailsPerRun = CatchUpDays + CatchUpWeeks

func (m *ReportMailer) now() time.Time {
	if m.Now == nil {
		return time.Now()
	}
	return m.Now()
}

// SendDue sends the reports written and not yet mailed, oldest first of
// each kind, returning the base names sent ("audit-daily-2026-12-01").
// A report whose message the server does not take stops its kind (the
// next run starts again from it, so reports arrive in order); the other
// kind goes on. The errors are joined.
func (m *ReportMailer) SendDue(ctx context.Context) ([]string, error) {
	dir := m.Reporter.Dir
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit reports directory: %w", err)
	}
	names := make(map[string]bool, len(entries))
	for _, e := range entries {
		names[e.Name()] = true
	}
	since, err := m.since()
	if err != nil {
		return nil, err
	}
	var sent []string
	var errs []error
	for _, p := range m.Periods {
		for _, date := range m.due(p, names, since[p]) {
			if len(sent) == maxMailsPerRun || ctx.Err() != nil {
				return sent, errors.Join(append(errs, ctx.Err())...)
			}
			base := "audit-" + p.String() + "-" + date
			ok, err := m.sendOne(ctx, p, date, base)
			var rejected *RejectedError
			switch {
			case errors.As(err, &rejected):
				// The server will never take this message (a 5xx to its
				// recipients or its data): marked, said, and the next
				// ones go on.
				errs = append(errs, fmt.Errorf("%s: %w (not sent again: delete %s%s to retry)", base, err, base, mailFailedExt))
				continue
			case err != nil:
				errs = append(errs, fmt.Errorf("%s: %w", base, err))
			case ok:
				sent = append(sent, base)
				continue
			}
			// Not sent: failed (the next run starts again from it), or
			// another replica is sending it (it goes on from there):
			// either way the later reports of this kind wait, in order.
			break
		}
	}
	return sent, errors.Join(errs...)
}

// due is the dates of p's reports to send, oldest first: on or after
// since, every format written, not mailed.
func (m *ReportMailer) due(p Period, names map[string]bool, since string) []string {
	prefix := "audit-" + p.String() + "-"
	var dates []string
	for name := range names {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok || !strings.HasSuffix(rest, "."+m.Formats[0].Ext()) {
			continue
		}
		date := strings.TrimSuffix(rest, "."+m.Formats[0].Ext())
		if _, err := time.Parse(time.DateOnly, date); err != nil || date < since || names[prefix+date+mailedExt] ||
			names[prefix+date+mailFailedExt] {
			continue
		}
		all := true
		for _, f := range m.Formats[1:] {
			all = all && names[prefix+date+"."+f.Ext()]
		}
		if all {
			dates = append(dates, date)
		}
	}
	slices.Sort(dates)
	return dates
}

// since reads MailSinceFile, writing it (or a kind missing from it) with
// the newest report of each kind on disk.
func (m *ReportMailer) since() (map[Period]string, error) {
	path := filepath.Join(m.Reporter.Dir, MailSinceFile)
	out := map[Period]string{}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("audit reports mailing: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		kind, date, _ := strings.Cut(strings.TrimSpace(line), " ")
		for _, p := range []Period{Daily, Weekly} {
			if kind == p.String() {
				out[p] = date
			}
		}
	}
	var onDisk map[Period]string // the newest report of each kind, read once when needed
	changed := false
	for _, p := range m.Periods {
		if _, ok := out[p]; ok {
			continue
		}
		if onDisk == nil {
			if onDisk, err = m.Reporter.newestOnDisk(); err != nil {
				return nil, fmt.Errorf("audit reports mailing: %w", err)
			}
		}
		changed, out[p] = true, onDisk[p]
	}
	if !changed {
		return out, nil
	}
	var w strings.Builder
	for _, p := range []Period{Daily, Weekly} {
		if d, ok := out[p]; ok {
			fmt.Fprintf(&w, "%s %s\n", p, d)
		}
	}
	if err := writeFileAtomic(path, []byte(w.String())); err != nil {
		return nil, fmt.Errorf("audit reports mailing: %w", err)
	}
	return out, nil
}

// sendOne claims, sends and marks one report; false when another replica
// holds its claim or has sent it meanwhile.
func (m *ReportMailer) sendOne(ctx context.Context, p Period, date, base string) (bool, error) {
	dir := m.Reporter.Dir
	claim := filepath.Join(dir, base+claimExt)
	token, ok := m.claim(claim)
	if !ok {
		return false, nil
	}
	defer m.release(claim, token)
	if _, err := os.Stat(filepath.Join(dir, base+mailedExt)); err == nil {
		return false, nil // sent by another replica since this run listed the directory
	}
	msg, err := m.Message(p, date)
	if err != nil {
		return false, err
	}
	if err := m.Send(ctx, m.From, m.To, msg); err != nil {
		var rejected *RejectedError
		if errors.As(err, &rejected) {
			note := fmt.Sprintf("refused %s: %v\n", m.now().UTC().Format(time.RFC3339), rejected.Err)
			_ = writeFileAtomic(filepath.Join(dir, base+mailFailedExt), []byte(note))
		}
		return false, err
	}
	note := fmt.Sprintf("sent %s to %d address(es)\n", m.now().UTC().Format(time.RFC3339), len(m.To))
	if err := writeFileAtomic(filepath.Join(dir, base+mailedExt), []byte(note)); err != nil {
		// sent but not marked: the next run would send it again
		return true, fmt.Errorf("sent, but not marked as sent (it may be sent again): %w", err)
	}
	return true, nil
}

// claim takes the claim file, or a stale one (older than ClaimFor),
// writing a token of its own into it. A stale claim is taken over by
// renaming it away first: of replicas that all find it stale, one rename
// succeeds.
func (m *ReportMailer) claim(path string) (string, bool) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	hold := m.ClaimFor
	if hold <= 0 {
		hold = 10 * time.Minute
	}
	for range 2 {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			_, werr := f.WriteString(token)
			if cerr := f.Close(); werr != nil || cerr != nil {
				_ = os.Remove(path)
				return "", false
			}
			return token, true
		}
		st, serr := os.Stat(path)
		if serr != nil || m.now().Sub(st.ModTime()) < hold {
			return "", false
		}
		// A crashed sender's: only one replica's rename takes it.
		aside := path + ".stale-" + token
		if os.Rename(path, aside) != nil {
			return "", false
		}
		_ = os.Remove(aside)
	}
	return "", false
}

// release removes the claim if it is still this sender's.
func (m *ReportMailer) release(path, token string) {
	if b, err := os.ReadFile(path); err == nil && string(b) == token {
		_ = os.Remove(path)
	}
}

// Message is the e-mail of p's report of date: a line of text and the
// report's files attached.
func (m *ReportMailer) Message(p Period, date string) ([]byte, error) {
	r := m.Reporter
	start, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return nil, err
	}
	s := ReportSpan{Period: p, Start: start.Add(-r.UTCOffset), End: start.Add(-r.UTCOffset + p.length())}
	local := func(t time.Time) string { return t.Add(r.UTCOffset).UTC().Format("2006-01-02 15:04") }
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	h := func(kv ...string) textproto.MIMEHeader {
		out := textproto.MIMEHeader{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	part, err := w.CreatePart(h("Content-Type", "text/plain; charset=utf-8", "Content-Transfer-Encoding", "8bit"))
	if err != nil {
		return nil, err
	}
	var files, kinds []string
	for _, f := range m.Formats {
		files = append(files, r.FileName(s, f))
		kinds = append(kinds, strings.ToUpper(f.Ext()))
	}
	fmt.Fprintf(part, "The %s UIAS audit report of %s (records from %s to %s%s) is attached as %s.\r\n\r\n"+
		"It holds account ids and client addresses: keep it as you keep the audit log.\r\n"+
		"The same files are in the audit component's reports directory: %s.\r\n",
		p, date, local(s.Start), local(s.End), offsetName(r.UTCOffset), strings.Join(kinds, ", "), strings.Join(files, ", "))
	for i, f := range m.Formats {
		data, err := os.ReadFile(filepath.Join(r.Dir, files[i]))
		if err != nil {
			return nil, err
		}
		part, err := w.CreatePart(h("Content-Type", mime.FormatMediaType(strings.SplitN(f.ContentType(), ";", 2)[0], map[string]string{"name": files[i]}),
			"Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": files[i]}),
			"Content-Transfer-Encoding", "base64"))
		if err != nil {
			return nil, err
		}
		enc := base64.StdEncoding.EncodeToString(data)
		for len(enc) > 76 {
			_, _ = part.Write([]byte(enc[:76] + "\r\n"))
			enc = enc[76:]
		}
		_, _ = part.Write([]byte(enc + "\r\n"))
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	var id [12]byte
	_, _ = rand.Read(id[:])
	domain := "uias"
	if _, d, ok := strings.Cut(m.From, "@"); ok {
		domain = d
	}
	var msg bytes.Buffer
	for _, kv := range [][2]string{
		{"From", m.From},
		{"To", strings.Join(m.To, ", ")},
		{"Subject", mime.QEncoding.Encode("utf-8", "UIAS audit report, "+p.String()+", "+date)},
		{"Date", m.now().Format(time.RFC1123Z)},
		{"Message-ID", "<" + hex.EncodeToString(id[:]) + ".audit-" + p.String() + "-" + date + "@" + domain + ">"},
		{"MIME-Version", "1.0"},
		{"Content-Type", mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": w.Boundary()})},
	} {
		msg.WriteString(kv[0] + ": " + kv[1] + "\r\n")
	}
	msg.WriteString("\r\n")
	msg.Write(body.Bytes())
	return msg.Bytes(), nil
}

// writeFileAtomic writes data to path through a temporary file renamed
// into place (mode 0600).
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mail-*.tmp")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

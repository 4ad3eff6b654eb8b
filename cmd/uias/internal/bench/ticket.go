package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// The ticket phase: CAS service tickets issued and validated in pairs, over
// gRPC (TicketService/ValidateServiceTicket) and over the REST edge
// (GET /cas/p3/serviceValidate, attributes included), against the echo
// floor in the same slices; and single use under contention checked while
// measuring (every 16th pair has 4 concurrent validations of its ticket:
// exactly one may succeed).

const (
	benchService    = "https://bench.example.com/app/"
	ticketSessions  = 64 // sessions the pairs take turns with (one session's updates would conflict)
	contentionEvery = 16
	contenders      = 4
)

type ticketRound struct {
	echo, grpc, rest *Result
	checks, broken   int64 // contention checks made, and those where not exactly one validation succeeded
	// the same with the access records stored outside the measurement
	// (outside.go): the goal rows
	outEcho, outGRPC, outREST *Result
	outside                   *outsideRun
}

// apiValidate is the API of a validation's record (over gRPC and through
// the edge's p3/serviceValidate alike): the ticket component's
// ticket.validate record is the call's access record too (one record per
// validation, ADR 0007 amendment).
const apiValidate = "ticket.validate"

// counted counts the validations made through count (one access record
// each; a contended pair makes several).
func counted(count func(CallFunc) CallFunc, v func(context.Context, string) (bool, error)) func(context.Context, string) (bool, error) {
	return func(ctx context.Context, st string) (bool, error) {
		var ok bool
		var err error
		_, _ = count(func(ctx context.Context) (Outcome, error) { ok, err = v(ctx, st); return OK, nil })(ctx)
		return ok, err
	}
}

// ticketBench holds what the pairs use.
type ticketBench struct {
	svc      *ticket.Service
	tickets  ticketv1.TicketServiceClient
	tgts     []string
	next     atomic.Uint64
	checks   atomic.Int64
	broken   atomic.Int64
	validURL string
}

func (e *env) ticketSetup(ctx context.Context) (*ticketBench, error) {
	h, ok := e.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle)
	if !ok {
		return nil, errors.New("the ticket component does not run in the benchmark process")
	}
	reg := ticketv1.NewServiceRegistryServiceClient(e.conn)
	if _, err := reg.CreateService(e.adminCtx, &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
		AppId: e.appID, Name: "Benchmark", Url: benchService}}); err != nil {
		return nil, fmt.Errorf("register the benchmark service: %w", err)
	}
	tb := &ticketBench{svc: h.Service, tickets: ticketv1.NewTicketServiceClient(e.conn),
		validURL: e.httpBase + "/cas/p3/serviceValidate?service=" + url.QueryEscape(benchService) + "&ticket="}
	for range ticketSessions {
		tgt, _, err := h.Service.CreateSession(ctx, ticket.NewSession{UserID: e.userID, Login: "bench", AuthLevel: 1})
		if err != nil {
			return nil, fmt.Errorf("create a session: %w", err)
		}
		tb.tgts = append(tb.tgts, tgt)
	}
	return tb, nil
}

// ticketBench returns what the pairs use, set up on first use.
func (e *env) ticketBench(ctx context.Context) (*ticketBench, error) {
	if e.tickets == nil {
		tb, err := e.ticketSetup(ctx)
		if err != nil {
			return nil, err
		}
		e.tickets = tb
	}
	return e.tickets, nil
}

// issue makes a service ticket (in-process: the CAS login's part).
func (tb *ticketBench) issue(ctx context.Context) (string, uint64, error) {
	n := tb.next.Add(1)
	st, _, err := tb.svc.IssueServiceTicket(ctx, tb.tgts[n%ticketSessions], benchService, false)
	return st, n, err
}

func (tb *ticketBench) validateGRPC(ctx context.Context, st string) (bool, error) {
	res, err := tb.tickets.ValidateServiceTicket(ctx, &ticketv1.ValidateServiceTicketRequest{Ticket: st, Service: benchService})
	return err == nil && res.GetValid(), err
}

// contend validates st from several callers at once: exactly one may win.
func (tb *ticketBench) contend(ctx context.Context, st string, validate func(context.Context, string) (bool, error)) error {
	var wins atomic.Int32
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range contenders {
		wg.Go(func() {
			ok, err := validate(ctx, st)
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	tb.checks.Add(1)
	if wins.Load() != 1 {
		tb.broken.Add(1)
	}
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	return nil
}

func (tb *ticketBench) pair(validate func(context.Context, string) (bool, error)) CallFunc {
	return func(ctx context.Context) (Outcome, error) {
		st, n, err := tb.issue(ctx)
		if err != nil {
			return Failed, fmt.Errorf("issue: %w", err)
		}
		if n%contentionEvery == 0 {
			if err := tb.contend(ctx, st, validate); err != nil {
				return Failed, err
			}
			return OK, nil
		}
		ok, err := validate(ctx, st)
		switch {
		case err != nil:
			return Failed, err
		case !ok:
			return Failed, errors.New("a fresh ticket was refused")
		}
		return OK, nil
	}
}

func (e *env) validateREST(tb *ticketBench) func(context.Context, string) (bool, error) {
	return func(ctx context.Context, st string) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, tb.validURL+url.QueryEscape(st), nil)
		if err != nil {
			return false, err
		}
		resp, err := e.httpClient.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return false, fmt.Errorf("p3/serviceValidate: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("p3/serviceValidate: HTTP %d", resp.StatusCode)
		}
		return strings.Contains(string(body), "<cas:authenticationSuccess>"), nil
	}
}

// measureTicket runs the ticket phase of one round.
func (e *env) measureTicket(ctx context.Context, o *options, log io.Writer,
	closed func(int, CallFunc) Measure) (*ticketRound, error) {
	tb, err := e.ticketBench(ctx)
	if err != nil {
		return nil, err
	}
	c0, b0 := tb.checks.Load(), tb.broken.Load()
	res := Interleave(ctx, o.slices, o.warmup, o.duration, closed(o.concurrency, e.callEcho),
		closed(o.concurrency, tb.pair(tb.validateGRPC)), closed(o.concurrency, tb.pair(e.validateREST(tb))))
	out, run, err := e.withIngestOutside(ctx, []string{apiValidate}, func(count func(CallFunc) CallFunc) []*Result {
		return Interleave(ctx, o.slices, o.warmup, o.duration, closed(o.concurrency, e.callEcho),
			closed(o.concurrency, tb.pair(counted(count, tb.validateGRPC))),
			closed(o.concurrency, tb.pair(counted(count, e.validateREST(tb)))))
	})
	if err != nil {
		return nil, err
	}
	r := &ticketRound{echo: res[0], grpc: res[1], rest: res[2], checks: tb.checks.Load() - c0, broken: tb.broken.Load() - b0,
		outEcho: out[0], outGRPC: out[1], outREST: out[2], outside: run}
	fmt.Fprintf(log, "  ticket, all in one: echo %s; issue+validate gRPC %s; issue+p3/serviceValidate REST %s\n",
		summary(r.echo), summary(r.grpc), summary(r.rest))
	fmt.Fprintf(log, "  ticket, records stored outside the measurement: echo %s; issue+validate gRPC %s; issue+p3/serviceValidate REST %s; %s\n",
		summary(r.outEcho), summary(r.outGRPC), summary(r.outREST), run.note())
	fmt.Fprintf(log, "  ticket single use: %d of %d contended tickets broken\n", r.broken, r.checks)
	if run.err != nil {
		fmt.Fprintf(log, "  %v\n", run.err)
	}
	return r, nil
}

// ticketRows are the report rows of the ticket phase.
func ticketRows(o *options, rounds []*round) []*row {
	conc := fmt.Sprintf("%d callers", o.concurrency)
	pair := "each call issues a service ticket in the process (the CAS login's part: the ticket kept in the " +
		"instance's memory, issued from its recent copy of the session, which is written to its JetStream key-value " +
		"bucket only for a new service or every ticket.session_touch) and validates it"
	aio := " All in one: the audit component of the same process stores the access records (one per validation) " +
		"in the measured slices, on the same CPUs. No goal: the goal is judged on the row with the records stored " +
		"outside the measurement (the parameters say why); this one is reported beside it."
	outside := outsideExplain("validation's")
	grpcBase := fmt.Sprintf("Ticket pairs per second, %d closed-loop callers: %s over gRPC "+
		"(TicketService/ValidateServiceTicket: signature check, atomic consume: a delete from the issuing "+
		"instance's memory; no session read: the session's end would have removed the ticket), against Health/Check "+
		"on a plain grpc.Server measured in the same slices.", o.concurrency, pair)
	restBase := "As above, validating with GET /cas/p3/serviceValidate through the edge (HTTP/1.1 " +
		"keep-alive): the validation and the person's attributes from identity, answered in CAS 3.0 XML."
	grpcQPS, aioGRPC := outsidePair("CAS ticket issue + validate (gRPC)", conc, 0.5, grpcBase, outside, aio)
	restQPS, aioREST := outsidePair("CAS p3/serviceValidate issue + validate (REST edge)", conc, 0.25, restBase, outside, aio)
	single := &row{name: "CAS single use under contention", u: count, zeroGoal: true,
		oursLabel: "tickets validated more or less than once", floorLabel: "tickets validated by 4 callers at once",
		explain: fmt.Sprintf("While the rows above are measured, every %dth pair has %d concurrent validations "+
			"of its ticket: exactly one may succeed. Goal: no exception.", contentionEvery, contenders)}
	for _, r := range rounds {
		t := r.ticket
		if t == nil {
			continue
		}
		echo := t.echo.QPS()
		aioGRPC.add(t.grpc.QPS(), echo)
		aioREST.add(t.rest.QPS(), echo)
		single.add(float64(t.broken), float64(t.checks))
		if t.outGRPC != nil {
			oecho := t.outEcho.QPS()
			grpcQPS.add(t.outGRPC.QPS(), oecho)
			restQPS.add(t.outREST.QPS(), oecho)
			grpcQPS.note = t.outside.note()
			if t.outside.err != nil {
				grpcQPS.errs = append(grpcQPS.errs, t.outside.err.Error())
			}
		}
		for _, f := range []struct {
			rw   *row
			what string
			res  *Result
		}{{aioGRPC, "gRPC pairs", t.grpc}, {aioREST, "REST pairs", t.rest}, {aioGRPC, "echo", t.echo},
			{grpcQPS, "gRPC pairs", t.outGRPC}, {restQPS, "REST pairs", t.outREST}, {grpcQPS, "echo", t.outEcho}} {
			if f.res != nil && f.res.Failed > 0 {
				f.rw.errs = append(f.rw.errs, fmt.Sprintf("%s: %d failed calls, first: %v", f.what, f.res.Failed, f.res.FirstErr))
			}
		}
	}
	var out []*row
	for _, rw := range []*row{grpcQPS, restQPS, aioGRPC, aioREST, single} {
		if len(rw.ours) > 0 {
			out = append(out, rw)
		}
	}
	return out
}

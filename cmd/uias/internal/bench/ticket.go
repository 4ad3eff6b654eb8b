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
	r := &ticketRound{echo: res[0], grpc: res[1], rest: res[2], checks: tb.checks.Load() - c0, broken: tb.broken.Load() - b0}
	fmt.Fprintf(log, "  ticket: echo %s; issue+validate gRPC %s; issue+p3/serviceValidate REST %s; single use: %d of %d contended tickets broken\n",
		summary(r.echo), summary(r.grpc), summary(r.rest), r.broken, r.checks)
	return r, nil
}

// ticketRows are the report rows of the ticket phase.
func ticketRows(o *options, rounds []*round) []*row {
	conc := fmt.Sprintf("%d callers", o.concurrency)
	pair := "each call issues a service ticket in the process (the CAS login's part: the ticket kept in the " +
		"instance's memory, issued from its recent copy of the session, which is written to its JetStream key-value " +
		"bucket only for a new service or every ticket.session_touch) and validates it"
	grpcQPS := &row{name: "CAS ticket issue + validate (gRPC)", u: perSec, atLeast: true, target: 0.5,
		oursLabel: conc, floorLabel: "echo gRPC (health Check)",
		explain: fmt.Sprintf("Ticket pairs per second, %d closed-loop callers: %s over gRPC "+
			"(TicketService/ValidateServiceTicket: signature check, atomic consume: a delete from the issuing "+
			"instance's memory; no session read: the session's end would have removed the ticket), against Health/Check "+
			"on a plain grpc.Server measured in the same slices.", o.concurrency, pair)}
	restQPS := &row{name: "CAS p3/serviceValidate issue + validate (REST edge)", u: perSec, atLeast: true, target: 0.25,
		oursLabel: conc, floorLabel: "echo gRPC (health Check)",
		explain: "As above, validating with GET /cas/p3/serviceValidate through the edge (HTTP/1.1 " +
			"keep-alive): the validation and the person's attributes from identity, answered in CAS 3.0 XML."}
	single := &row{name: "CAS single use under contention", u: count, zeroGoal: true,
		oursLabel: "tickets validated more or less than once", floorLabel: "tickets validated by 4 callers at once",
		explain: fmt.Sprintf("While the two rows above are measured, every %dth pair has %d concurrent validations "+
			"of its ticket: exactly one may succeed. Goal: no exception.", contentionEvery, contenders)}
	for _, r := range rounds {
		t := r.ticket
		if t == nil {
			continue
		}
		echo := t.echo.QPS()
		grpcQPS.add(t.grpc.QPS(), echo)
		restQPS.add(t.rest.QPS(), echo)
		single.add(float64(t.broken), float64(t.checks))
		for _, f := range []struct {
			rw   *row
			what string
			res  *Result
		}{{grpcQPS, "gRPC pairs", t.grpc}, {restQPS, "REST pairs", t.rest}, {grpcQPS, "echo", t.echo}} {
			if f.res.Failed > 0 {
				f.rw.errs = append(f.rw.errs, fmt.Sprintf("%s: %d failed calls, first: %v", f.what, f.res.Failed, f.res.FirstErr))
			}
		}
	}
	var out []*row
	for _, rw := range []*row{grpcQPS, restQPS, single} {
		if len(rw.ours) > 0 {
			out = append(out, rw)
		}
	}
	return out
}

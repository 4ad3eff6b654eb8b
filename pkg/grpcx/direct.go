package grpcx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/uias/uias/pkg/apierr"
)

// Direct calls.
//
// When the caller and the service run in the same process (the REST edge
// and the components in `uias serve --target=all`, or one component calling
// another), a unary call need not cross the gRPC transport: no HTTP/2
// framing, no protobuf encoding and decoding on each side, no connection
// goroutines. Direct is a grpc.ClientConnInterface that finds the method's
// handler among the services registered on it and runs it with the server's
// interceptor chain (the one NewServer builds from the same ServerOptions:
// admission, recovery, request id, client ip, access record, logging,
// metrics, caller auth, validation, error funnel), so a call is served,
// recorded and refused exactly as over the in-process listener:
//
//   - the request is copied into a new message (proto.Merge), the reply
//     copied back into the caller's: neither side keeps a message the other
//     may reuse;
//   - the outgoing metadata (with the request id and origin of the calling
//     context, as UnaryClientOrigin adds them) becomes the incoming
//     metadata, without gRPC's reserved keys;
//   - the handler runs in a context of its own: none of the caller's
//     context values (its caller, its request id, ...) reach it; it ends
//     when the caller's does, with the caller's deadline;
//   - the peer is InprocAddr, so the call is InProcess and its origin is
//     trusted as over the in-process listener;
//   - grpc.SetHeader, SendHeader and SetTrailer work inside the handler and
//     reach the caller's grpc.Header and grpc.Trailer call options;
//   - a request with a string that is not valid UTF-8 (which the codec
//     would have refused) is refused as a bad request naming the field.
//
// Streaming methods, methods not registered on it and messages that are not
// protobuf go to Streams, a connection to the in-process listener. Message
// size limits (ServerOptions.MaxRecvMsgSize) are not applied: the callers
// are the process's own code (the edge bounds REST bodies).
//
// It stops as a server does (GracefulStop, Stop): from then on a call is
// answered UNAVAILABLE ("the service is shutting down") instead of being
// served by a process whose stores may be closing; see there.
type Direct struct {
	chain   *chain
	admit   func(string) error
	streams grpc.ClientConnInterface

	mu      sync.Mutex // serialises RegisterService
	methods atomic.Pointer[map[string]directMethod]

	// Stopping: calls counts the calls being served; state (directOpen,
	// directDraining, directStopped) says which new ones are taken; idle
	// wakes a GracefulStop when the last call ends; base is the parent of
	// the handlers' contexts, cancelled by Stop.
	calls    atomic.Int64
	state    atomic.Int32
	idle     chan struct{}
	base     context.Context
	stopBase context.CancelFunc
}

// The states of a Direct.
const (
	directOpen     = iota // serving every call
	directDraining        // GracefulStop: serving the calls made while serving another, refusing the rest
	directStopped         // Stop: refusing every call
)

// directMethod is a unary method's handler and its service implementation.
type directMethod struct {
	impl    any
	handler grpc.MethodHandler
}

var (
	_ grpc.ClientConnInterface = (*Direct)(nil)
	_ grpc.ServiceRegistrar    = (*Direct)(nil)
)

// NewDirect returns a direct channel serving calls with the interceptor
// chain of a server built by NewServer(o) (the metrics are counted on
// o.Registry with that server's). streams serves what Direct does not (see
// there): a connection to a server with the same services, e.g. over an
// InprocListener. Register the services on it (RegisterService), alongside
// the servers.
func NewDirect(o ServerOptions, streams grpc.ClientConnInterface) *Direct {
	base, stop := context.WithCancel(context.Background())
	return &Direct{chain: newChain(o), admit: o.Admit, streams: streams,
		idle: make(chan struct{}, 1), base: base, stopBase: stop}
}

// GracefulStop stops d as grpc.Server.GracefulStop stops a server: new
// calls are refused (UNAVAILABLE), except those made while serving a call
// (Serving: a handler finishing its work may still call another component
// of the process), and it returns once the calls being served have ended,
// or when Stop is called.
func (d *Direct) GracefulStop() {
	d.state.CompareAndSwap(directOpen, directDraining)
	for d.calls.Load() > 0 {
		select {
		case <-d.idle:
		case <-d.base.Done():
			return
		}
	}
	// Another GracefulStop may wait for the same end.
	select {
	case d.idle <- struct{}{}:
	default:
	}
}

// Stop stops d as grpc.Server.Stop stops a server: every new call is
// refused (UNAVAILABLE) and the contexts of the calls being served are
// cancelled; a call that then ends CANCELED is answered UNAVAILABLE too
// (the stop ended it, not its caller), while any other error a handler
// returns keeps its code (the error funnel has made it fit for the caller).
// It does not wait for the handlers.
func (d *Direct) Stop() {
	d.state.Store(directStopped)
	d.stopBase()
}

// enter counts a new call in, or refuses it (false) when d is stopping.
func (d *Direct) enter(ctx context.Context) bool {
	d.calls.Add(1)
	switch d.state.Load() {
	case directOpen:
		return true
	case directDraining:
		if Serving(ctx) {
			return true
		}
	}
	d.leave()
	return false
}

// leave counts a call out, waking a GracefulStop after the last.
func (d *Direct) leave() {
	if d.calls.Add(-1) == 0 && d.state.Load() != directOpen {
		select {
		case d.idle <- struct{}{}:
		default:
		}
	}
}

// shuttingDown is the answer to a call refused or failed because d stops:
// UNAVAILABLE, as a gRPC client gets from a server that is stopping.
func shuttingDown() error {
	return apierr.ToStatus(apierr.ErrUnavailable.WithMessage("the service is shutting down; try again"))
}

// RegisterService implements grpc.ServiceRegistrar: the unary methods of
// desc are served directly by impl from now on.
func (d *Direct) RegisterService(desc *grpc.ServiceDesc, impl any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := map[string]directMethod{}
	if old := d.methods.Load(); old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	for _, md := range desc.Methods {
		m["/"+desc.ServiceName+"/"+md.MethodName] = directMethod{impl: impl, handler: md.Handler}
	}
	d.methods.Store(&m)
}

// NewStream implements grpc.ClientConnInterface: streams go to Streams.
func (d *Direct) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return d.streams.NewStream(ctx, desc, method, opts...)
}

// Invoke implements grpc.ClientConnInterface.
func (d *Direct) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	var m directMethod
	var found bool
	if t := d.methods.Load(); t != nil {
		m, found = (*t)[method]
	}
	in, inOK := args.(proto.Message)
	out, outOK := reply.(proto.Message)
	if !found || !inOK || !outOK {
		return d.streams.Invoke(ctx, method, args, reply, opts...)
	}
	// As a gRPC client: a call made with a context already done is not
	// sent.
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	if !d.enter(ctx) {
		return shuttingDown()
	}
	st := &directStream{method: method}
	sctx, end := serverContext(d.base, ctx, originMD(ctx, nil, ""), st)
	resp, err := d.serve(sctx, m, method, in)
	// Stop cancelled the call (the caller's deadline would end the
	// caller's context too, below).
	cancelledByStop := sctx.Err() != nil && d.state.Load() == directStopped
	end()
	d.leave()
	header, trailer := st.finish()
	if cerr := ctx.Err(); cerr != nil {
		// The caller gave up (deadline, cancel) before the answer came: it
		// sees what a gRPC client sees, whatever the handler made of it.
		err = status.FromContextError(cerr).Err()
	} else if cancelledByStop && status.Code(err) == codes.Canceled {
		// Ended by the stop, not by the caller: as a gRPC client of a
		// server stopping. Any other error is the handler's own answer.
		err = shuttingDown()
	} else if err == nil {
		if e, ok := resp.(encodedResponse); ok {
			resp = e.msg // a signed answer (SignedBodies): its message
		}
		if r, ok := resp.(proto.Message); !ok || r == nil {
			err = status.Errorf(codes.Internal, "grpc: error while marshaling: %T is not a message", resp)
		} else {
			proto.Reset(out)
			proto.Merge(out, r)
		}
	}
	if err != nil {
		err = clientError(err)
	}
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			*o.HeaderAddr = header
		case grpc.TrailerCallOption:
			*o.TrailerAddr = trailer
		case grpc.PeerCallOption:
			*o.PeerAddr = peer.Peer{Addr: InprocAddr{}, LocalAddr: InprocAddr{}}
		case grpc.OnFinishCallOption:
			o.OnFinish(err)
		}
	}
	return err
}

// serve runs the handler of m with the server's admission and chain; the
// request crosses as a copy.
func (d *Direct) serve(ctx context.Context, m directMethod, method string, in proto.Message) (any, error) {
	if d.admit != nil {
		if err := d.chain.admitCall(d.admit, method); err != nil {
			return nil, err
		}
	}
	dec := func(v any) error {
		if t, ok := v.(digestTarget); ok {
			// A signed call's bytes (SignedBodies): there are none here,
			// the digest stays unknown.
			v = t.msg
		}
		req, ok := v.(proto.Message)
		if !ok {
			return status.Errorf(codes.Internal, "grpc: %s: the request %T is not a message", method, v)
		}
		if md := req.ProtoReflect().Descriptor(); md != in.ProtoReflect().Descriptor() {
			// A message of another type (the same fields, e.g. a dynamic
			// message): through its wire form, as over the transport.
			b, err := proto.Marshal(in)
			if err != nil {
				return status.Errorf(codes.Internal, "grpc: error while marshaling: %v", err)
			}
			if err := proto.Unmarshal(b, req); err != nil {
				markUndecodable(req, invalidUTF8Field(md, b, 0))
			}
			return nil
		}
		proto.Merge(req, in)
		if field := invalidUTF8In(req.ProtoReflect(), 0); field != "" {
			markUndecodable(req, field)
		}
		return nil
	}
	return m.handler(m.impl, ctx, dec, d.chain.unary)
}

// clientError is err as the caller of a gRPC call gets it: a status error
// of its own (non-status errors as the server converts them).
func clientError(err error) error {
	s, ok := status.FromError(err)
	if !ok {
		s = status.FromContextError(err)
	}
	return status.ErrorProto(s.Proto()) // a copy: the server may keep its error
}

// inprocPeer is the peer of every direct call (read only).
var inprocPeer = &peer.Peer{Addr: InprocAddr{}, LocalAddr: InprocAddr{}}

// serverContext is the context a direct call is served in: a child of
// parent (cancelled when the channel stops) with the caller's deadline and
// cancellation, md (the caller's outgoing metadata, a copy of its own) as
// incoming metadata, the in-process peer and st; none of the caller's
// values. end releases it.
func serverContext(parent, ctx context.Context, md metadata.MD, st *directStream) (_ context.Context, end func()) {
	for k := range md {
		if reservedKey(k) {
			delete(md, k)
		}
	}
	var base context.Context
	var cancel context.CancelFunc
	if dl, ok := ctx.Deadline(); ok {
		base, cancel = context.WithDeadline(parent, dl)
	} else {
		base, cancel = context.WithCancel(parent)
	}
	stop := context.AfterFunc(ctx, func() {
		// At the deadline the call's own timer ends it (DeadlineExceeded,
		// as on a server); a cancel ends it now.
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cancel()
		}
	})
	sctx := withCallMD(metadata.NewIncomingContext(base, md), md) // md is the call's own
	sctx = peer.NewContext(sctx, inprocPeer)
	sctx = grpc.NewContextWithServerTransportStream(sctx, st)
	return sctx, func() { stop(); cancel() }
}

// reservedKey: metadata keys a gRPC client does not send as metadata
// (pseudo-headers and the transport's own).
func reservedKey(k string) bool {
	if strings.HasPrefix(k, ":") {
		return true
	}
	switch k {
	case "content-type", "user-agent", "grpc-message-type", "grpc-encoding", "grpc-message",
		"grpc-status", "grpc-timeout", "grpc-status-details-bin", "te":
		return true
	}
	return false
}

// directStream is the grpc.ServerTransportStream of a direct call: it
// collects the header and trailer the handler (and the chain) set.
type directStream struct {
	method string

	mu         sync.Mutex
	header     metadata.MD
	trailer    metadata.MD
	headerSent bool
	done       bool
}

var errStreamDone = errors.New("grpc: the call is finished or its header was already sent")

// Method implements grpc.ServerTransportStream.
func (s *directStream) Method() string { return s.method }

// SetHeader implements grpc.ServerTransportStream.
func (s *directStream) SetHeader(md metadata.MD) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.headerSent || s.done {
		return errStreamDone
	}
	s.header = joinMD(s.header, md)
	return nil
}

// SendHeader implements grpc.ServerTransportStream.
func (s *directStream) SendHeader(md metadata.MD) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.headerSent || s.done {
		return errStreamDone
	}
	s.header = joinMD(s.header, md)
	s.headerSent = true
	return nil
}

// SetTrailer implements grpc.ServerTransportStream.
func (s *directStream) SetTrailer(md metadata.MD) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return fmt.Errorf("grpc: the call is finished")
	}
	s.trailer = joinMD(s.trailer, md)
	return nil
}

// finish ends the stream and hands over its header and trailer (never nil,
// as a gRPC client's). The header carries the content type, as the one a
// gRPC client receives (the edge forwards it, as Grpc-Metadata-Content-Type).
func (s *directStream) finish() (header, trailer metadata.MD) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	if s.header == nil {
		s.header = make(metadata.MD, 1)
	}
	s.header["content-type"] = []string{"application/grpc"}
	if s.trailer == nil {
		s.trailer = metadata.MD{}
	}
	return s.header, s.trailer
}

// joinMD adds md to dst (a map of its own), keys in lower case as on the
// wire.
func joinMD(dst, md metadata.MD) metadata.MD {
	if dst == nil {
		dst = make(metadata.MD, len(md))
	}
	for k, v := range md {
		k = strings.ToLower(k)
		dst[k] = append(dst[k], v...)
	}
	return dst
}

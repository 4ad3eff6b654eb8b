package grpcx

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"google.golang.org/grpc/metadata"
)

// A call made while serving another is nested only when a trusted channel
// says so: in-process, or signed with the nested mark; the mark set by a
// caller itself, or added to a signed call, counts for nothing.
func TestNestedTrust(t *testing.T) {
	key := []byte("0123456789abcdef")
	tcp := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}
	o := Origin{ClientIP: netip.MustParseAddr("192.0.2.7")}
	base := WithOrigin(WithRequestID(context.Background(), "rid-1"), o)
	serving := context.WithValue(base, servingKey{}, true)
	c := &chain{internalKey: key}
	forged := metadata.AppendToOutgoingContext(base, MetadataNested, "1")
	signedPlain, _ := metadata.FromOutgoingContext(outgoingOrigin(base, key, ""))
	added := signedPlain.Copy()
	added.Set(MetadataNested, "1")
	for name, tc := range map[string]struct {
		ctx  context.Context
		want bool
	}{
		"serving, signed":                  {serverSide(outgoingOrigin(serving, key, ""), tcp), true},
		"serving, in process":              {serverSide(outgoingOrigin(serving, nil, ""), InprocAddr{}), true},
		"serving, in process, no origin":   {serverSide(outgoingOrigin(context.WithValue(context.Background(), servingKey{}, true), nil, ""), InprocAddr{}), true},
		"not serving, signed":              {serverSide(outgoingOrigin(base, key, ""), tcp), false},
		"serving, unsigned network":        {serverSide(outgoingOrigin(serving, nil, ""), tcp), false},
		"caller's own mark, in process":    {serverSide(outgoingOrigin(forged, nil, ""), InprocAddr{}), false},
		"caller's own mark, raw network":   {serverSide(forged, tcp), false},
		"mark added to a signed call":      {peerCtx(metadata.NewIncomingContext(context.Background(), added), tcp), false},
		"serving, signed with another key": {serverSide(outgoingOrigin(serving, []byte("another-key-0000"), ""), tcp), false},
	} {
		if got := nestedCall(c.withOrigin(tc.ctx)); got != tc.want {
			t.Errorf("%s: nested = %v, want %v", name, got, tc.want)
		}
	}
}

func peerCtx(ctx context.Context, addr net.Addr) context.Context {
	return serverSide(metadata.NewOutgoingContext(ctx, mdOf(ctx)), addr)
}

func mdOf(ctx context.Context) metadata.MD {
	md, _ := metadata.FromIncomingContext(ctx)
	return md
}

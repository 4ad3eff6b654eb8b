package grpcx

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// serverSide turns what a client interceptor would send into the context a
// server handler gets from peer addr.
func serverSide(out context.Context, addr net.Addr) context.Context {
	md, _ := metadata.FromOutgoingContext(out)
	return peer.NewContext(metadata.NewIncomingContext(context.Background(), md), &peer.Peer{Addr: addr})
}

func TestOriginTrust(t *testing.T) {
	key := []byte("0123456789abcdef")
	o := Origin{ClientIP: netip.MustParseAddr("192.0.2.7"), App: "app-1", Principal: "u-1"}
	ctx := WithOrigin(WithRequestID(context.Background(), "rid-1"), o)
	tcp := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}

	if got, ok := incomingOrigin(serverSide(outgoingOrigin(ctx, key), tcp), key); !ok || got != o {
		t.Fatalf("signed origin: %+v %v", got, ok)
	}
	if got, ok := incomingOrigin(serverSide(outgoingOrigin(ctx, nil), InprocAddr{}), nil); !ok || got != o {
		t.Fatalf("in-process origin: %+v %v", got, ok)
	}
	for name, c := range map[string]context.Context{
		"unsigned over the network": serverSide(outgoingOrigin(ctx, nil), tcp),
		"signed with another key":   serverSide(outgoingOrigin(ctx, []byte("another-key-0000")), tcp),
	} {
		if got, ok := incomingOrigin(c, key); ok {
			t.Errorf("%s: believed %+v", name, got)
		}
	}
	// Changing any signed value breaks the signature.
	signed, _ := metadata.FromOutgoingContext(outgoingOrigin(ctx, key))
	for _, k := range []string{MetadataClientIP, MetadataOriginApp, MetadataOriginPrincipal, MetadataRequestID} {
		md := signed.Copy()
		md.Set(k, "10.0.0.1")
		c := peer.NewContext(metadata.NewIncomingContext(context.Background(), md), &peer.Peer{Addr: tcp})
		if got, ok := incomingOrigin(c, key); ok {
			t.Errorf("altered %s believed: %+v", k, got)
		}
	}
	if got := OriginFrom(WithClientIP(context.Background(), o.ClientIP)); got.ClientIP != o.ClientIP || got.App != "" {
		t.Errorf("OriginFrom falls back to the client address: %+v", got)
	}
}

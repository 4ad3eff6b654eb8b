// Package respsign is the client side of identity's
// CallerService.SignResponse: the response signer (grpcx.ResponseSigner)
// of the components that do not hold the key ring (authz, the REST edge),
// which ask identity, the key's holder, to sign their answers to signed
// calls (docs/adr/0016-signed-answers.md).
package respsign

import (
	"context"

	"google.golang.org/grpc"

	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/reqsig"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// Remote signs through identity's CallerService over conn (in-process or
// with the internal key: SignResponse is for components only).
func Remote(conn grpc.ClientConnInterface) grpcx.ResponseSigner {
	return remote{c: identityv1.NewCallerServiceClient(conn)}
}

type remote struct {
	c identityv1.CallerServiceClient
}

// SignResponse implements grpcx.ResponseSigner.
func (r remote) SignResponse(ctx context.Context, appID, target, nonce, bodySHA256 string) (reqsig.ResponseSignature, error) {
	// Part of the call it answers, which has its access record already:
	// the signing is not an API call of its own (no second record).
	ctx = grpcx.PartOf(ctx)
	if grpcx.RequestID(ctx) == "" {
		// authz signs outside its server chain (grpcx.SignedBodies): the
		// call's request id as it came.
		if id := grpcx.IncomingValue(ctx, grpcx.MetadataRequestID); grpcx.ValidRequestID(id) {
			ctx = grpcx.WithRequestID(ctx, id)
		}
	}
	res, err := r.c.SignResponse(ctx, &identityv1.SignResponseRequest{AppId: appID, Target: target, Nonce: nonce, ResponseSha256: bodySHA256})
	if err != nil {
		return reqsig.ResponseSignature{}, err
	}
	return reqsig.ResponseSignature{Signature: res.GetSignature(), KeyID: res.GetKeyId(), Timestamp: res.GetTimestamp()}, nil
}

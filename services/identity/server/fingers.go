package server

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity"
)

// fingerServer implements FingerService (administrators only; see
// CallerAuth). No response carries a template.
type fingerServer struct {
	identityv1.UnimplementedFingerServiceServer
	svc *identity.Service
}

// EnrollFinger implements FingerService.
func (f fingerServer) EnrollFinger(ctx context.Context, r *identityv1.EnrollFingerRequest) (*identityv1.EnrolledFinger, error) {
	fg, err := f.svc.EnrollFinger(ctx, r.GetUserId(), int(r.GetPosition()), r.GetRecord())
	if err != nil {
		return nil, err
	}
	return fingerOut(*fg), nil
}

// ListFingers implements FingerService.
func (f fingerServer) ListFingers(ctx context.Context, r *identityv1.ListFingersRequest) (*identityv1.ListFingersResponse, error) {
	fs, err := f.svc.ListFingers(ctx, r.GetUserId())
	if err != nil {
		return nil, err
	}
	out := &identityv1.ListFingersResponse{Fingers: make([]*identityv1.EnrolledFinger, len(fs))}
	for i, fg := range fs {
		out.Fingers[i] = fingerOut(fg)
	}
	return out, nil
}

// DeleteFinger implements FingerService.
func (f fingerServer) DeleteFinger(ctx context.Context, r *identityv1.DeleteFingerRequest) (*identityv1.DeleteFingerResponse, error) {
	if err := f.svc.DeleteFinger(ctx, r.GetUserId(), int(r.GetPosition())); err != nil {
		return nil, err
	}
	return &identityv1.DeleteFingerResponse{}, nil
}

// SetFingerprintBypass implements FingerService.
func (f fingerServer) SetFingerprintBypass(ctx context.Context, r *identityv1.SetFingerprintBypassRequest) (*identityv1.FingerprintBypass, error) {
	return bypassOut(f.svc.SetFingerprintBypass(ctx, r.GetAppId(), r.GetEnabled(), r.GetReason()))
}

// GetFingerprintBypass implements FingerService.
func (f fingerServer) GetFingerprintBypass(ctx context.Context, r *identityv1.GetFingerprintBypassRequest) (*identityv1.FingerprintBypass, error) {
	return bypassOut(f.svc.GetFingerprintBypass(ctx, r.GetAppId()))
}

func fingerOut(f identity.Finger) *identityv1.EnrolledFinger {
	return &identityv1.EnrolledFinger{UserId: f.UserID, Position: int32(f.Position), Quality: int32(f.Quality),
		Format: f.Format, Minutiae: int32(f.Minutiae), CreateTime: timestamppb.New(f.CreatedAt),
		UpdateTime: timestamppb.New(f.UpdatedAt)}
}

func bypassOut(b *identity.FingerBypass, err error) (*identityv1.FingerprintBypass, error) {
	if err != nil {
		return nil, err
	}
	out := &identityv1.FingerprintBypass{AppId: b.AppID, Enabled: b.Enabled, Reason: b.Reason, SetBy: b.SetBy}
	if !b.UpdatedAt.IsZero() {
		out.UpdateTime = timestamppb.New(b.UpdatedAt)
	}
	return out, nil
}

package server

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity"
)

// keyServer implements KeyService (administrators only; see CallerAuth).
type keyServer struct {
	identityv1.UnimplementedKeyServiceServer
	svc *identity.Service
}

// GetKeyStatus implements KeyService.
func (k keyServer) GetKeyStatus(ctx context.Context, _ *identityv1.GetKeyStatusRequest) (*identityv1.KeyStatus, error) {
	return keyStatusOut(k.svc.KeyStatus(ctx))
}

// RotateKeys implements KeyService.
func (k keyServer) RotateKeys(ctx context.Context, _ *identityv1.RotateKeysRequest) (*identityv1.KeyStatus, error) {
	return keyStatusOut(k.svc.RotateKeys(ctx))
}

// ReencryptData implements KeyService.
func (k keyServer) ReencryptData(ctx context.Context, r *identityv1.ReencryptDataRequest) (*identityv1.ReencryptDataResponse, error) {
	res, err := k.svc.ReencryptData(ctx, int(r.GetBatchSize()))
	if err != nil {
		return nil, err
	}
	return &identityv1.ReencryptDataResponse{ActiveKeyId: res.ActiveKeyID, Reencrypted: int64(res.Reencrypted),
		Failed: int64(res.Failed), Remaining: int64(res.Remaining), Kept: int64(res.Kept)}, nil
}

func keyStatusOut(st *identity.KeyStatus, err error) (*identityv1.KeyStatus, error) {
	if err != nil {
		return nil, err
	}
	out := &identityv1.KeyStatus{ActiveKeyId: st.ActiveKeyID, ActiveMasterKeyId: st.ActiveMasterKeyID,
		ValuesOnOlderKeys: int64(st.OnOlderKeys), ActiveMasterKeyAlgorithm: st.MasterSuites[st.ActiveMasterKeyID].Algorithm()}
	for _, dk := range st.Keys {
		out.Keys = append(out.Keys, &identityv1.DataKey{Id: dk.ID, MasterKeyId: dk.MasterKeyID(),
			CreatedAt: timestamppb.New(dk.CreatedAt), Active: dk.ID == st.ActiveKeyID,
			Algorithm: dk.Suite.Algorithm(), MasterKeyAlgorithm: st.MasterSuites[dk.MasterKeyID()].Algorithm()})
	}
	return out, nil
}

package component

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/services/identity"
)

// registerHasherMetrics exposes what the password hasher's admission
// decides with (docs/operators.md, "Login storms"): its duration
// estimate, what it is made of (the lone hashes' median and the busy
// workers' pace against it), the wall and CPU times of the lone hashes,
// and the number of checks waiting for a worker, read at each scrape.
func registerHasherMetrics(reg prometheus.Registerer, h *crypto.Hasher) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "uias_password_hash_seconds",
			Help: "Estimate of one password hash's duration that admission projects waits with: uias_password_hash_lone_seconds times uias_password_hash_busy_pace (when known)."},
			func() float64 { return h.HashTime().Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "uias_password_hash_lone_seconds",
			Help: "Median time on a thread of the last 64 lone hashes (each found its worker idle) at the current parameters."},
			func() float64 { return h.HashTimes().Lone.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "uias_password_hash_busy_pace",
			Help: "Median ratio of the last 64 back-to-back hashes' times (queued, begun as the one before ended; time on a thread, or thread CPU time for a hash on a thread of its own) to the lone hashes' of the moment, bounded to 0.5..2; 0 until 16 have run."},
			func() float64 { return h.HashTimes().BusyPace }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "uias_password_hash_wall_seconds",
			Help: "Median wall time of the lone hashes, start to end (the lone median leaves out their waits for a processor)."},
			func() float64 { return h.HashTimes().Wall.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "uias_password_hash_cpu_seconds",
			Help: "Median thread CPU time of the lone hashes (0 where the thread CPU clock cannot be read)."},
			func() float64 { return h.HashTimes().CPU.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "uias_password_hash_waiting",
			Help: "Password checks waiting for a hash worker."},
			func() float64 { return float64(h.Waiting()) }),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// registerSecretMetrics exposes the applications homed at this centre
// whose App_Secret expires within 14 days (the expired included) and those
// already expired, as the last count found them (every 5 minutes and after
// each secret change made here;
// identity.RunSecretExpiryWarnings; docs/operators.md, "App_Secret validity
// periods").
func registerSecretMetrics(reg prometheus.Registerer, svc *identity.Service) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "uias_app_secrets_expiring",
			Help: "Applications homed at this centre whose App_Secret expires within 14 days or has expired (counted every 5 minutes and after each secret change)."},
			func() float64 { return float64(svc.SecretExpiry().Expiring) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "uias_app_secrets_expired",
			Help: "Applications homed at this centre whose App_Secret has expired: their callers are refused APP_SECRET_EXPIRED (counted every 5 minutes and after each secret change)."},
			func() float64 { return float64(svc.SecretExpiry().Expired) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "uias_app_signing_keys_expiring",
			Help: "Request signing keys of applications homed at this centre that expire within 14 days or have expired (counted with the secrets)."},
			func() float64 { return float64(svc.SecretExpiry().KeysExpiring) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "uias_app_signing_keys_expired",
			Help: "Request signing keys of applications homed at this centre that have expired: requests they sign are refused SIGNING_KEY_EXPIRED."},
			func() float64 { return float64(svc.SecretExpiry().KeysExpired) }),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// registerUniquenessMetrics counts level 1's answers to the other centres'
// questions about uniqueness (identity.Service.AnswerPeerClaim, uniqpeer
// shedding) by centre and outcome; the centre label is a centre of
// sync.subtrees or "unknown" (review sec29b H1, M2).
func registerUniquenessMetrics(reg prometheus.Registerer) (func(centre, outcome string), error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "uias_uniqueness_questions_total",
		Help: "Questions of other centres about uniqueness answered by this level-1 instance, by asking centre and outcome: free, taken, error (not answered), refused_unknown (a centre not in sync.subtrees), rate_limited (over identity.uniqueness.peer_rate), shed (all answerers busy)."},
		[]string{"centre", "outcome"})
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	return func(centre, outcome string) { c.WithLabelValues(centre, outcome).Inc() }, nil
}

// registerExternalMetrics counts the checks of the external authenticators
// (identity.external_authenticators) by authenticator and outcome:
// accepted, rejected, unavailable (no answer, an error, or "cannot
// decide"), mismatch (an answer about another person).
func registerExternalMetrics(reg prometheus.Registerer) (func(name, outcome string), error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "uias_external_authenticator_checks_total",
		Help: "Checks asked of each external authenticator, by outcome: accepted, rejected, unavailable (no verdict: unreachable, too slow, an error, or it could not decide), mismatch (a verdict about another person than the one asked about, ignored)."},
		[]string{"authenticator", "outcome"})
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	return func(name, outcome string) { c.WithLabelValues(name, outcome).Inc() }, nil
}

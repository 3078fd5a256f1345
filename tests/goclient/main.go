// SPDX-License-Identifier: MIT
// paymentd-goclient — a small grpc-go client of payment.v1.PaymentService,
// for driving paymentd the way a Go service does: ONE channel, i.e. one
// HTTP/2 connection, shared by N goroutines issuing calls concurrently.
//
// Built by scripts/install-tools into build/tools/bin/paymentd-goclient (the
// Go code for proto/payment/v1/payment.proto is generated at build time into
// tests/goclient/gen/, which is git-ignored).
//
// Usage:
//
//	paymentd-goclient [-target HOST:PORT] [-concurrency N]
//	                  [-duration D | -n COUNT]
//	                  [-payers ID,ID,... -payees ID,ID,... | -prefix P -accounts K]
//	                  [-amount CENTS [-amount-max CENTS]] [-currency C]
//	                  [-balance-ratio F] [-deadline D] [-key-prefix S]
//	                  [-allow-codes CODE,...] [-fail-on-decline] [-json]
//	                  [-plaintext | [-tls-ca FILE] [-tls-cert FILE -tls-key FILE]
//	                   [-tls-server-name NAME]]
//
// Contract:
//   - One grpc.ClientConn to -target (default $PAYMENTD_TARGET, else
//     127.0.0.1:50051), default pick_first: one TCP connection.
//   - Transport as paymentctl's (daemon/ctl/gcli.h), so the three clients
//     agree: -plaintext: cleartext (no -tls-* flag with it); else any of
//     -tls-ca/-tls-cert/-tls-key (each falling back to PAYMENTD_TLS_CA /
//     _CERT / _KEY) or -tls-server-name: TLS (crypto/tls, TLS 1.2 or 1.3,
//     ALPN h2) verified against -tls-ca, else the system's roots, with the
//     client certificate for mutual TLS; else PAYMENTD_PLAINTEXT=1 (the test
//     stacks): cleartext; else TLS with the system's roots.
//     $PAYMENTD_TOKEN (an API token, pd_...) goes out as
//     "authorization: Bearer ..." on every call (grpc.WithPerRPCCredentials;
//     allowed over cleartext too, for the loopback test stacks).
//     The client waits (-connect-timeout) for it to be READY before the clock
//     starts, so connection set-up is not part of any latency.
//   - -concurrency goroutines each run calls back to back (closed loop) until
//     -duration has elapsed (calls in flight then are finished and counted) or,
//     with -n > 0, until -n calls were started in total.
//   - Each call is AuthorizePayment with a fresh idempotency key
//     (-key-prefix, default "gc-<random>", plus a sequence number), the payer
//     and payee drawn at random from -payers/-payees (never equal), or both
//     from PREFIX000000..PREFIX(K-1) with -prefix/-accounts (the names
//     paymentd-loadgen --setup-accounts creates); default the seed accounts
//     acc-payer-001 -> acc-payee-002. The amount is -amount cents, or uniform
//     in [-amount, -amount-max] when -amount-max is larger. With
//     -balance-ratio F (0..1), that fraction of calls is GetAccountBalance of
//     a random payer instead.
//   - Every call has the per-call deadline -deadline (default 5s).
//   - Output: a short human summary, or with -json exactly one JSON line on
//     stdout:
//     {"tool":"paymentd-goclient","target":..,"transport":"tls"|"plaintext",
//     "concurrency":..,"connections":1,
//     "elapsed_s":..,"requests":..,"ok":..,"errors":{"UNAVAILABLE":n,..},
//     "unexpected":..,"payment_status":{"AUTHORIZED":n,"DECLINED":n,..},
//     "decline_codes":{"INSUFFICIENT_FUNDS":n,..},"balance_ok":..,
//     "throughput_rps":..,"latency_ms":{"min","mean","p50","p95","p99","max"},
//     "first_error":".."}
//     "requests" counts finished calls, "ok" those with gRPC status OK
//     (business declines are OK responses), "errors" the others by canonical
//     gRPC code name, latencies cover every finished call.
//   - Exit status: 0 when every call ended OK (or with a code listed in
//     -allow-codes) and at least one call finished; 1 when any call failed
//     unexpectedly (any other code; with -fail-on-decline also any DECLINED
//     payment); 2 on bad flags or when the channel never became READY.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	paymentv1 "paymentd/tests/goclient/gen/payment/v1"
)

// buildStamp is set by scripts/install-tools (-ldflags -X) to a hash of the
// sources and pins, so the installer can tell whether the binary is current.
var buildStamp = "dev"

type config struct {
	target         string
	concurrency    int
	duration       time.Duration
	n              int64
	payers, payees []string
	amount         int64
	amountMax      int64
	currency       string
	description    string
	balanceRatio   float64
	deadline       time.Duration
	connectTimeout time.Duration
	keyPrefix      string
	allowCodes     map[codes.Code]bool
	failOnDecline  bool
	jsonOut        bool
	plaintext      bool
	tlsCA          string
	tlsCert        string
	tlsKey         string
	tlsServerName  string
}

// result of one worker, merged at the end (no shared state on the hot path
// except the call counter for -n).
type tally struct {
	lat        []time.Duration
	ok         int64
	errs       map[string]int64
	unexpected int64
	pstatus    map[string]int64
	declines   map[string]int64
	balanceOK  int64
	firstErr   string
}

func newTally() *tally {
	return &tally{errs: map[string]int64{}, pstatus: map[string]int64{}, declines: map[string]int64{}}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// codeName gives the canonical upper-snake name of a gRPC code
// ("DeadlineExceeded" -> "DEADLINE_EXCEEDED"), as grpcurl and the C client print.
func codeName(c codes.Code) string {
	s := c.String()
	if c == codes.OK || strings.HasPrefix(s, "Code(") {
		return strings.ToUpper(s)
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

func parseCode(name string) (codes.Code, bool) {
	name = strings.ToUpper(strings.TrimSpace(name))
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if codeName(c) == name {
			return c, true
		}
	}
	if v, err := strconv.Atoi(name); err == nil && v >= 0 {
		return codes.Code(v), true
	}
	return 0, false
}

func usageErr(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "paymentd-goclient: "+format+"\n", a...)
	os.Exit(2)
}

func parseFlags() *config {
	c := &config{}
	defTarget := os.Getenv("PAYMENTD_TARGET")
	if defTarget == "" {
		defTarget = "127.0.0.1:50051"
	}
	flag.StringVar(&c.target, "target", defTarget, "paymentd gRPC address host:port (default $PAYMENTD_TARGET)")
	flag.IntVar(&c.concurrency, "concurrency", 8, "concurrent calls in flight on the one connection")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "how long to run (ignored when -n > 0)")
	flag.Int64Var(&c.n, "n", 0, "total number of calls (overrides -duration)")
	payers := flag.String("payers", "", "comma-separated payer account ids")
	payees := flag.String("payees", "", "comma-separated payee account ids")
	prefix := flag.String("prefix", "lg-", "account name prefix used with -accounts")
	accounts := flag.Int("accounts", 0, "draw payer and payee from PREFIX000000..PREFIX(K-1)")
	flag.Int64Var(&c.amount, "amount", 100, "amount in cents (minimum when -amount-max is set)")
	flag.Int64Var(&c.amountMax, "amount-max", 0, "if > -amount, amounts are uniform in [amount, amount-max]")
	flag.StringVar(&c.currency, "currency", "USD", "currency of the payments")
	flag.StringVar(&c.description, "description", "paymentd-goclient", "payment description")
	flag.Float64Var(&c.balanceRatio, "balance-ratio", 0, "fraction (0..1) of calls that are GetAccountBalance")
	flag.DurationVar(&c.deadline, "deadline", 5*time.Second, "per-call deadline")
	flag.DurationVar(&c.connectTimeout, "connect-timeout", 5*time.Second, "how long to wait for the channel to be READY")
	flag.StringVar(&c.keyPrefix, "key-prefix", "", "idempotency key prefix (default gc-<random>)")
	allow := flag.String("allow-codes", "", "comma-separated gRPC codes that are expected, not failures (e.g. RESOURCE_EXHAUSTED)")
	flag.BoolVar(&c.failOnDecline, "fail-on-decline", false, "count DECLINED payments as unexpected failures")
	flag.BoolVar(&c.jsonOut, "json", false, "print one JSON summary line")
	flag.BoolVar(&c.plaintext, "plaintext", false, "cleartext HTTP/2, no TLS (also PAYMENTD_PLAINTEXT=1); default TLS")
	flag.StringVar(&c.tlsCA, "tls-ca", "", "PEM roots to verify the server by (default $PAYMENTD_TLS_CA, else the system's)")
	flag.StringVar(&c.tlsCert, "tls-cert", "", "client certificate chain, PEM, for mutual TLS (default $PAYMENTD_TLS_CERT)")
	flag.StringVar(&c.tlsKey, "tls-key", "", "the client certificate's private key, PEM (default $PAYMENTD_TLS_KEY)")
	flag.StringVar(&c.tlsServerName, "tls-server-name", "", "name the server's certificate must carry (default: the target's host)")
	version := flag.Bool("version", false, "print the build stamp and exit")
	flag.Parse()

	if *version {
		fmt.Println("paymentd-goclient " + buildStamp)
		os.Exit(0)
	}
	if flag.NArg() > 0 {
		usageErr("unexpected argument %q", flag.Arg(0))
	}
	if c.concurrency < 1 {
		usageErr("-concurrency must be >= 1")
	}
	if c.n < 0 || (c.n == 0 && c.duration <= 0) {
		usageErr("need -n > 0 or -duration > 0")
	}
	if c.deadline <= 0 {
		usageErr("-deadline must be > 0")
	}
	if c.balanceRatio < 0 || c.balanceRatio > 1 {
		usageErr("-balance-ratio must be within 0..1")
	}
	if c.amountMax != 0 && c.amountMax < c.amount {
		usageErr("-amount-max must be >= -amount")
	}
	c.payers, c.payees = splitList(*payers), splitList(*payees)
	if *accounts > 0 {
		if len(c.payers) > 0 || len(c.payees) > 0 {
			usageErr("use either -payers/-payees or -prefix/-accounts")
		}
		if *accounts < 2 {
			usageErr("-accounts needs at least 2 accounts")
		}
		for i := 0; i < *accounts; i++ {
			c.payers = append(c.payers, fmt.Sprintf("%s%06d", *prefix, i))
		}
		c.payees = c.payers
	}
	if len(c.payers) == 0 {
		c.payers = []string{"acc-payer-001"}
	}
	if len(c.payees) == 0 {
		c.payees = []string{"acc-payee-002"}
	}
	if len(c.payers) == 1 && len(c.payees) == 1 && c.payers[0] == c.payees[0] {
		usageErr("payer and payee are the same account")
	}
	c.allowCodes = map[codes.Code]bool{}
	for _, name := range splitList(*allow) {
		code, ok := parseCode(name)
		if !ok {
			usageErr("unknown gRPC code %q in -allow-codes", name)
		}
		c.allowCodes[code] = true
	}
	if c.keyPrefix == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		c.keyPrefix = "gc-" + hex.EncodeToString(b)
	}
	return c
}

// transport settles cleartext or TLS (the rules in the contract above) and
// returns the credentials and "tls" or "plaintext". Errors are usage errors.
func transport(c *config) (credentials.TransportCredentials, string, error) {
	if c.plaintext {
		if c.tlsCA != "" || c.tlsCert != "" || c.tlsKey != "" || c.tlsServerName != "" {
			return nil, "", fmt.Errorf("-plaintext excludes -tls-ca, -tls-cert, -tls-key and -tls-server-name")
		}
		return insecure.NewCredentials(), "plaintext", nil
	}
	ca, caFrom := envDefault(c.tlsCA, "-tls-ca", "PAYMENTD_TLS_CA")
	cert, certFrom := envDefault(c.tlsCert, "-tls-cert", "PAYMENTD_TLS_CERT")
	key, keyFrom := envDefault(c.tlsKey, "-tls-key", "PAYMENTD_TLS_KEY")
	if (cert == "") != (key == "") {
		if cert != "" {
			return nil, "", fmt.Errorf("%s needs -tls-key or PAYMENTD_TLS_KEY too", certFrom)
		}
		return nil, "", fmt.Errorf("%s needs -tls-cert or PAYMENTD_TLS_CERT too", keyFrom)
	}
	if ca == "" && cert == "" && c.tlsServerName == "" {
		switch v := os.Getenv("PAYMENTD_PLAINTEXT"); strings.ToLower(v) {
		case "1", "true", "yes", "on":
			return insecure.NewCredentials(), "plaintext", nil
		case "", "0", "false", "no", "off":
		default:
			return nil, "", fmt.Errorf("PAYMENTD_PLAINTEXT: expected 1 or 0, got %q", v)
		}
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.tlsServerName}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %v", caFrom, err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, "", fmt.Errorf("%s: %s holds no PEM certificate", caFrom, ca)
		}
	}
	if cert != "" {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, "", fmt.Errorf("%s/%s: %v", certFrom, keyFrom, err)
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	// credentials.NewTLS adds ALPN h2, which the server insists on.
	return credentials.NewTLS(cfg), "tls", nil
}

// envDefault is value, else the environment variable env (an empty one
// counts as unset), and the name of where it came from.
func envDefault(value, flagName, env string) (string, string) {
	if value != "" {
		return value, flagName
	}
	return os.Getenv(env), env
}

func waitReady(conn *grpc.ClientConn, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn.Connect()
	for {
		s := conn.GetState()
		if s == connectivity.Ready {
			return nil
		}
		if !conn.WaitForStateChange(ctx, s) {
			return fmt.Errorf("channel to %s not READY after %s (last state %s)", conn.Target(), timeout, s)
		}
	}
}

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	// nearest rank
	i := int(p/100*float64(len(sorted))+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return ms(sorted[i])
}

func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

func round3(f float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', 3, 64), 64)
	return v
}

// bearer is a paymentd API token as per-RPC credentials.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false so the cleartext loopback stacks of the
// tests can use tokens too; a real deployment serves TLS.
func (b bearer) RequireTransportSecurity() bool { return false }

func main() {
	c := parseFlags()

	creds, transportName, err := transport(c)
	if err != nil {
		usageErr("%v", err)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if tok := os.Getenv("PAYMENTD_TOKEN"); tok != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(tok)))
	}
	conn, err := grpc.NewClient(c.target, opts...)
	if err != nil {
		usageErr("%v", err)
	}
	defer conn.Close()
	if err := waitReady(conn, c.connectTimeout); err != nil {
		usageErr("%v over %s", err, transportName)
	}
	client := paymentv1.NewPaymentServiceClient(conn)

	var started atomic.Int64 // calls started, for -n and the key sequence
	start := time.Now()
	end := start.Add(c.duration)
	tallies := make([]*tally, c.concurrency)
	var wg sync.WaitGroup
	for w := 0; w < c.concurrency; w++ {
		t := newTally()
		tallies[w] = t
		wg.Add(1)
		go func(rng *mrand.Rand) {
			defer wg.Done()
			for {
				seq := started.Add(1)
				if c.n > 0 {
					if seq > c.n {
						return
					}
				} else if !time.Now().Before(end) {
					return
				}
				payer := c.payers[rng.IntN(len(c.payers))]
				payee := c.payees[rng.IntN(len(c.payees))]
				for payee == payer {
					payer = c.payers[rng.IntN(len(c.payers))]
					payee = c.payees[rng.IntN(len(c.payees))]
				}
				balance := c.balanceRatio > 0 && rng.Float64() < c.balanceRatio
				ctx, cancel := context.WithTimeout(context.Background(), c.deadline)
				t0 := time.Now()
				var resp *paymentv1.AuthorizePaymentResponse
				var err error
				if balance {
					_, err = client.GetAccountBalance(ctx, &paymentv1.GetAccountBalanceRequest{AccountId: payer})
				} else {
					amount := c.amount
					if c.amountMax > c.amount {
						amount += rng.Int64N(c.amountMax - c.amount + 1)
					}
					resp, err = client.AuthorizePayment(ctx, &paymentv1.AuthorizePaymentRequest{
						IdempotencyKey: c.keyPrefix + "-" + strconv.FormatInt(seq, 10),
						PayerAccountId: payer,
						PayeeAccountId: payee,
						AmountCents:    amount,
						Currency:       c.currency,
						Description:    c.description,
					})
				}
				t.lat = append(t.lat, time.Since(t0))
				cancel()
				if err != nil {
					st := status.Convert(err)
					t.errs[codeName(st.Code())]++
					if !c.allowCodes[st.Code()] {
						t.unexpected++
						if t.firstErr == "" {
							t.firstErr = codeName(st.Code()) + ": " + st.Message()
						}
					}
					continue
				}
				t.ok++
				if balance {
					t.balanceOK++
					continue
				}
				ps := strings.TrimPrefix(resp.GetStatus().String(), "PAYMENT_STATUS_")
				t.pstatus[ps]++
				if resp.GetStatus() == paymentv1.PaymentStatus_PAYMENT_STATUS_DECLINED {
					dc := strings.TrimPrefix(resp.GetError().GetCode().String(), "PAYMENT_ERROR_CODE_")
					t.declines[dc]++
					if c.failOnDecline {
						t.unexpected++
						if t.firstErr == "" {
							t.firstErr = "DECLINED " + dc + ": " + resp.GetError().GetMessage()
						}
					}
				}
			}
		}(mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), uint64(w))))
	}
	wg.Wait()
	elapsed := time.Since(start)

	all := newTally()
	for _, t := range tallies {
		all.lat = append(all.lat, t.lat...)
		all.ok += t.ok
		all.unexpected += t.unexpected
		all.balanceOK += t.balanceOK
		for k, v := range t.errs {
			all.errs[k] += v
		}
		for k, v := range t.pstatus {
			all.pstatus[k] += v
		}
		for k, v := range t.declines {
			all.declines[k] += v
		}
		if all.firstErr == "" {
			all.firstErr = t.firstErr
		}
	}
	sort.Slice(all.lat, func(i, j int) bool { return all.lat[i] < all.lat[j] })
	requests := int64(len(all.lat))
	var sum time.Duration
	for _, d := range all.lat {
		sum += d
	}
	mean := 0.0
	if requests > 0 {
		mean = ms(sum) / float64(requests)
	}
	lat := map[string]float64{
		"min": 0, "mean": round3(mean), "p50": pct(all.lat, 50), "p95": pct(all.lat, 95),
		"p99": pct(all.lat, 99), "max": 0,
	}
	if requests > 0 {
		lat["min"], lat["max"] = ms(all.lat[0]), ms(all.lat[requests-1])
	}
	rps := 0.0
	if elapsed > 0 {
		rps = round3(float64(requests) / elapsed.Seconds())
	}

	if c.jsonOut {
		out := map[string]any{
			"tool":           "paymentd-goclient",
			"target":         c.target,
			"transport":      transportName,
			"concurrency":    c.concurrency,
			"connections":    1,
			"elapsed_s":      round3(elapsed.Seconds()),
			"requests":       requests,
			"ok":             all.ok,
			"errors":         all.errs,
			"unexpected":     all.unexpected,
			"payment_status": all.pstatus,
			"decline_codes":  all.declines,
			"balance_ok":     all.balanceOK,
			"throughput_rps": rps,
			"latency_ms":     lat,
			"first_error":    all.firstErr,
		}
		b, _ := json.Marshal(out)
		fmt.Println(string(b))
	} else {
		fmt.Printf("target %s (%s), 1 connection, concurrency %d, %.3f s\n", c.target, transportName, c.concurrency, elapsed.Seconds())
		fmt.Printf("requests %d  ok %d  unexpected %d  throughput %.1f/s\n", requests, all.ok, all.unexpected, rps)
		fmt.Printf("latency ms: min %.3f mean %.3f p50 %.3f p95 %.3f p99 %.3f max %.3f\n",
			lat["min"], lat["mean"], lat["p50"], lat["p95"], lat["p99"], lat["max"])
		printMap := func(title string, m map[string]int64) {
			if len(m) == 0 {
				return
			}
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			parts := make([]string, 0, len(keys))
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
			}
			fmt.Printf("%s: %s\n", title, strings.Join(parts, " "))
		}
		printMap("payment status", all.pstatus)
		printMap("decline codes", all.declines)
		printMap("gRPC errors", all.errs)
		if all.balanceOK > 0 {
			fmt.Printf("GetAccountBalance ok: %d\n", all.balanceOK)
		}
		if all.firstErr != "" {
			fmt.Printf("first error: %s\n", all.firstErr)
		}
	}
	if all.unexpected > 0 || requests == 0 {
		os.Exit(1)
	}
}

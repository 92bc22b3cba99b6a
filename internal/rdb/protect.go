package rdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The account's protection: its suppression list, the log of messages
// that count toward its frequency caps, the users WeChat asked to leave
// alone for a while (43117), and its users' customer-service windows. All
// of an account's keys share its hash tag, so that one script admits a
// send against all of them.

// Suppression reasons.
const (
	// SuppressUnfollowed: 43004, or an unsubscribe event.
	SuppressUnfollowed = "unfollowed"
	// SuppressBlocked: 48002, or a "failed:user block" receipt.
	SuppressBlocked = "blocked"
	// SuppressRefused: 43101 (subscribe notifications refused).
	SuppressRefused = "refused"
	// SuppressInvalid: 40003.
	SuppressInvalid = "invalid"
	// SuppressManual: added by an operator.
	SuppressManual = "manual"
)

// SuppressReasons lists the reasons in the order reports show them.
var SuppressReasons = []string{SuppressUnfollowed, SuppressBlocked, SuppressRefused, SuppressInvalid, SuppressManual}

// Suppression is one entry of an account's suppression list.
type Suppression struct {
	OpenID string
	// Reason is one of the Suppress* reasons.
	Reason string
	// Code is the errcode that added it, if any.
	Code int
	// At is when it was added.
	At time.Time
	// Source says what added it: "campaign:run" of the send, "receipt",
	// "event", or the operator's key name.
	Source string
	// Note is the operator's note, if any.
	Note string
}

// encode is "reason|code|at|source|note" ('|' in source and note become
// '/').
func (s Suppression) encode() string {
	code := ""
	if s.Code != 0 {
		code = strconv.Itoa(s.Code)
	}
	clean := func(x string) string { return strings.ReplaceAll(x, "|", "/") }
	return s.Reason + "|" + code + "|" + strconv.FormatInt(s.At.UnixMilli(), 10) + "|" + clean(s.Source) + "|" + clean(s.Note)
}

// ParseSuppression decodes openid's stored entry v.
func ParseSuppression(openid, v string) (Suppression, error) {
	p := strings.SplitN(v, "|", 5)
	if len(p) != 5 {
		return Suppression{}, fmt.Errorf("suppression of %s: %q: want 5 fields", openid, v)
	}
	s := Suppression{OpenID: openid, Reason: p[0], Source: p[3], Note: p[4]}
	if p[1] != "" {
		c, err := strconv.Atoi(p[1])
		if err != nil {
			return Suppression{}, fmt.Errorf("suppression of %s: code %q", openid, p[1])
		}
		s.Code = c
	}
	ms, err := strconv.ParseInt(p[2], 10, 64)
	if err != nil {
		return Suppression{}, fmt.Errorf("suppression of %s: time %q", openid, p[2])
	}
	s.At = time.UnixMilli(ms)
	return s, nil
}

// Suppress adds entries to appID's suppression list. An entry of a user
// already on it replaces the old one only when replace is set (an
// operator's), so that the first reason WeChat gave is kept. It returns
// how many users were not on the list before.
func (r *RDB) Suppress(ctx context.Context, appID string, replace bool, entries ...Suppression) (int, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	key := r.keys.Suppressed(appID)
	cmds, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range entries {
			if replace {
				p.HSet(ctx, key, e.OpenID, e.encode())
			} else {
				p.HSetNX(ctx, key, e.OpenID, e.encode())
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("suppress: %w", err)
	}
	added := 0
	for _, c := range cmds {
		switch c := c.(type) {
		case *redis.IntCmd:
			added += int(c.Val())
		case *redis.BoolCmd:
			if c.Val() {
				added++
			}
		}
	}
	return added, nil
}

// unsuppress removes entries; ARGV[1] "1" keeps those of an operator
// (reason manual). Returns how many were removed.
var unsuppress = redis.NewScript(`
local n = 0
for i = 2, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v and not (ARGV[1] == '1' and string.sub(v, 1, 7) == 'manual|') then
    n = n + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return n
`)

// Unsuppress removes users from appID's suppression list (keepManual:
// except those an operator added) and returns how many it removed.
func (r *RDB) Unsuppress(ctx context.Context, appID string, keepManual bool, openids ...string) (int, error) {
	if len(openids) == 0 {
		return 0, nil
	}
	args := append([]any{boolArg(keepManual)}, strings2any(openids)...)
	n, err := unsuppress.Run(ctx, r.c, []string{r.keys.Suppressed(appID)}, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("unsuppress: %w", err)
	}
	return n, nil
}

// GetSuppressions returns the entries of openids (ok false for users not
// on the list).
func (r *RDB) GetSuppressions(ctx context.Context, appID string, openids []string) ([]Suppression, []bool, error) {
	out := make([]Suppression, len(openids))
	ok := make([]bool, len(openids))
	if len(openids) == 0 {
		return out, ok, nil
	}
	vals, err := r.c.HMGet(ctx, r.keys.Suppressed(appID), openids...).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("get suppressions: %w", err)
	}
	for i, v := range vals {
		s, isStr := v.(string)
		if !isStr {
			continue
		}
		e, err := ParseSuppression(openids[i], s)
		if err != nil {
			return nil, nil, err
		}
		out[i], ok[i] = e, true
	}
	return out, ok, nil
}

// ScanSuppressions returns a page of appID's suppression list from cursor
// (0 to start) and the cursor of the next page (0 at the end). A page holds
// about count entries; the order is Redis's.
func (r *RDB) ScanSuppressions(ctx context.Context, appID string, cursor uint64, count int64) ([]Suppression, uint64, error) {
	kv, next, err := r.c.HScan(ctx, r.keys.Suppressed(appID), cursor, "", count).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("scan suppressions: %w", err)
	}
	out := make([]Suppression, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		e, err := ParseSuppression(kv[i], kv[i+1])
		if err != nil {
			return nil, 0, err
		}
		out = append(out, e)
	}
	return out, next, nil
}

// CountSuppressions returns the size of appID's suppression list.
func (r *RDB) CountSuppressions(ctx context.Context, appID string) (int64, error) {
	n, err := r.c.HLen(ctx, r.keys.Suppressed(appID)).Result()
	if err != nil {
		return 0, fmt.Errorf("count suppressions: %w", err)
	}
	return n, nil
}

// SetRest records that WeChat asked to leave appID's user openid alone
// until then (43117): sends that count toward the caps wait until then.
// A later rest already recorded is kept.
func (r *RDB) SetRest(ctx context.Context, appID, openid string, until time.Time) error {
	err := setRest.Run(ctx, r.c, []string{r.keys.Rest(appID)}, openid, until.UnixMilli()).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("set rest: %w", err)
	}
	return nil
}

var setRest = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 0
`)

// interact records a user's interaction: ARGV openid, at, end, allowed. A
// window that ends later and has messages left is kept; otherwise the new
// one replaces it, with its own count.
var interact = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local _, fin, allow, ms = string.match(cur, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
  local n = 0
  for _ in string.gmatch(ms or '', '[^,]+') do n = n + 1 end
  if tonumber(fin or '0') > tonumber(ARGV[3]) and n < tonumber(allow or '0') then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4] .. '|')
return 1
`)

// Interact records that appID's user openid interacted at at, opening a
// customer-service window of length window for allowed messages. It
// reports whether the window it opened replaced the user's (false: the
// user's open window ends later and has messages left).
func (r *RDB) Interact(ctx context.Context, appID, openid string, at time.Time, window time.Duration, allowed int) (bool, error) {
	n, err := interact.Run(ctx, r.c, []string{r.keys.CSWindows(appID)}, openid, at.UnixMilli(), at.Add(window).UnixMilli(), allowed).Int()
	if err != nil {
		return false, fmt.Errorf("interact: %w", err)
	}
	return n == 1, nil
}

// CSWindowState is a user's customer-service window.
type CSWindowState struct {
	OpenID     string
	Start, End time.Time
	Allowed    int
	Used       int
}

// Open reports whether the window is open at now with messages left.
func (w CSWindowState) Open(now time.Time) bool { return now.Before(w.End) && w.Used < w.Allowed }

func parseCSWindow(openid, v string) (CSWindowState, error) {
	p := strings.SplitN(v, "|", 4)
	if len(p) != 4 {
		return CSWindowState{}, fmt.Errorf("cs window of %s: %q", openid, v)
	}
	start, err1 := strconv.ParseInt(p[0], 10, 64)
	end, err2 := strconv.ParseInt(p[1], 10, 64)
	allowed, err3 := strconv.Atoi(p[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return CSWindowState{}, fmt.Errorf("cs window of %s: %q: %w", openid, v, err)
	}
	used := 0
	if p[3] != "" {
		used = strings.Count(p[3], ",") + 1
	}
	return CSWindowState{OpenID: openid, Start: time.UnixMilli(start), End: time.UnixMilli(end), Allowed: allowed, Used: used}, nil
}

// GetCSWindow returns the customer-service window of appID's user openid
// (ok false: no interaction recorded).
func (r *RDB) GetCSWindow(ctx context.Context, appID, openid string) (CSWindowState, bool, error) {
	v, err := r.c.HGet(ctx, r.keys.CSWindows(appID), openid).Result()
	if errors.Is(err, redis.Nil) {
		return CSWindowState{}, false, nil
	}
	if err != nil {
		return CSWindowState{}, false, fmt.Errorf("get cs window: %w", err)
	}
	w, err := parseCSWindow(openid, v)
	return w, err == nil, err
}

// ScanCSWindows calls fn with every customer-service window of appID's
// users, in no order, and deletes those that closed before expired.
func (r *RDB) ScanCSWindows(ctx context.Context, appID string, expired time.Time, fn func(CSWindowState) error) error {
	key := r.keys.CSWindows(appID)
	var cursor uint64
	for {
		kv, next, err := r.c.HScan(ctx, key, cursor, "", 1000).Result()
		if err != nil {
			return fmt.Errorf("scan cs windows: %w", err)
		}
		var stale []string
		for i := 0; i+1 < len(kv); i += 2 {
			w, err := parseCSWindow(kv[i], kv[i+1])
			if err != nil {
				return err
			}
			if w.End.Before(expired) {
				stale = append(stale, w.OpenID)
				continue
			}
			if err := fn(w); err != nil {
				return err
			}
		}
		if len(stale) > 0 {
			// A window reopened meanwhile is lost here at worst for a
			// user whose interaction came in the same instant: rare, and
			// the next interaction records it again.
			if err := r.c.HDel(ctx, key, stale...).Err(); err != nil {
				return fmt.Errorf("scan cs windows: %w", err)
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// Admission is what a send must pass before its call: the account's
// suppression list, WeChat's rests, the customer-service window and the
// frequency caps. A send that passes is reserved a place in the caps and
// the window (Member, once: a retry of the same recipient and run finds it
// reserved), in the same atomic step as the checks, so that concurrent
// sends of every process never let a user over a cap.
type Admission struct {
	AppID string
	// Member names the send in the cap log and the window ("campaign:run").
	Member string
	// Blocking lists the suppression reasons that stop this send.
	Blocking []string
	// Caps are the caps this send counts toward and must fit in (none:
	// it is exempt, and rests do not apply either).
	Caps []CapRule
	// Rest makes WeChat's rests (SetRest) apply.
	Rest bool
	// CSWindow requires an open customer-service window with a message
	// left.
	CSWindow bool
	// Now is the sender's clock.
	Now time.Time
}

// CapRule is one frequency cap: at most Max messages in any window of Per.
type CapRule struct {
	Max int
	Per time.Duration
}

// key groups admissions that one script can check together.
func (a *Admission) key() string {
	args := a.args()
	return fmt.Sprint(a.AppID, args[1:])
}

// args are the script's ARGV before the (openid, member) pairs.
func (a *Admission) args() []any {
	caps := make([]string, len(a.Caps))
	longest := int64(0)
	for i, c := range a.Caps {
		caps[i] = strconv.Itoa(c.Max) + ":" + strconv.FormatInt(c.Per.Milliseconds(), 10)
		longest = max(longest, c.Per.Milliseconds())
	}
	return []any{a.Now.UnixMilli(), "," + strings.Join(a.Blocking, ",") + ",", strings.Join(caps, ","), boolArg(a.Rest), boolArg(a.CSWindow), longest}
}

// AdmitVerdict is what an admission decided.
type AdmitVerdict byte

// Admission verdicts.
const (
	AdmitNew        AdmitVerdict = 'N' // admitted, and reserved now
	AdmitHeld       AdmitVerdict = 'E' // admitted: reserved by an earlier try (or nothing to reserve)
	AdmitSuppressed AdmitVerdict = 'S' // on the suppression list (Admit.Suppression)
	AdmitRest       AdmitVerdict = 'F' // WeChat asked to leave the user alone until Admit.Until
	AdmitCapped     AdmitVerdict = 'C' // over a cap until Admit.Until (Admit.Members: the log)
	AdmitNoWindow   AdmitVerdict = 'W' // no customer-service window open (Admit.Window says why)
)

// Admit is an admission's verdict.
type Admit struct {
	Verdict     AdmitVerdict
	Suppression Suppression
	Until       time.Time
	// Members are the cap log's members in the longest cap's window.
	Members []string
	// Window is why a customer-service window does not admit: "none"
	// (no interaction recorded), "closed" (WindowStart is the last
	// interaction) or "used" (WindowAllowed messages sent).
	Window        string
	WindowStart   time.Time
	WindowAllowed int
}

// Admitted reports whether the send may be made.
func (a Admit) Admitted() bool { return a.Verdict == AdmitNew || a.Verdict == AdmitHeld }

// admit checks and reserves sends of one account. KEYS[1] suppression
// list, KEYS[2] rests, KEYS[3] cs windows, KEYS[3+i] the cap log of the
// i-th send. ARGV[1] now (ms), ARGV[2] ",reason,...," blocking, ARGV[3]
// "max:per,..." caps, ARGV[4] "1" rests apply, ARGV[5] "1" window
// required, ARGV[6] the longest cap's window (ms), then pairs of openid
// and member. One answer per send:
//
//	N / E                 admitted (reserved now / before)
//	S<entry>              suppressed (its stored entry)
//	F<until>              resting
//	C<until>|<members>    capped; the log's members, space-separated
//	Wnone / Wclosed|<start> / Wused|<allowed>
var admit = redis.NewScript(`
local now, blocking, capspec, rest, needcs, longest = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4] == '1', ARGV[5] == '1', tonumber(ARGV[6])
local caps = {}
for m, p in string.gmatch(capspec, '(%d+):(%d+)') do caps[#caps + 1] = {tonumber(m), tonumber(p)} end
local out = {}
for i = 7, #ARGV, 2 do
  local openid, member = ARGV[i], ARGV[i + 1]
  local capkey = KEYS[3 + (i - 5) / 2]
  local res
  local s = redis.call('HGET', KEYS[1], openid)
  if s then
    local reason = string.match(s, '^([^|]*)')
    if string.find(blocking, ',' .. reason .. ',', 1, true) then res = 'S' .. s end
  end
  if not res and rest then
    local r = tonumber(redis.call('HGET', KEYS[2], openid) or '0')
    if r > now then
      res = 'F' .. r
    elseif r > 0 then
      redis.call('HDEL', KEYS[2], openid)
    end
  end
  local csentry, csadd
  if not res and needcs then
    csentry = redis.call('HGET', KEYS[3], openid)
    if not csentry then
      res = 'Wnone'
    else
      local start, fin, allow, ms = string.match(csentry, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
      local has, n = false, 0
      for m in string.gmatch(ms, '[^,]+') do
        n = n + 1
        if m == member then has = true end
      end
      if not has then
        if now >= tonumber(fin) then
          res = 'Wclosed|' .. start
        elseif n >= tonumber(allow) then
          res = 'Wused|' .. allow
        else
          csadd = true
        end
      end
    end
  end
  local new = false
  if not res and #caps > 0 then
    if not redis.call('ZSCORE', capkey, member) then
      local untl = 0
      for _, c in ipairs(caps) do
        local lo = '(' .. (now - c[2])
        local n = redis.call('ZCOUNT', capkey, lo, '+inf')
        if n >= c[1] then
          local o = redis.call('ZRANGEBYSCORE', capkey, lo, '+inf', 'WITHSCORES', 'LIMIT', n - c[1], 1)
          local u = tonumber(o[2]) + c[2]
          if u > untl then untl = u end
        end
      end
      if untl > 0 then
        local ms = redis.call('ZRANGEBYSCORE', capkey, '(' .. (now - longest), '+inf')
        res = 'C' .. untl .. '|' .. table.concat(ms, ' ')
      else
        redis.call('ZADD', capkey, now, member)
        redis.call('ZREMRANGEBYSCORE', capkey, '-inf', now - longest)
        redis.call('PEXPIRE', capkey, longest)
        new = true
      end
    end
  end
  if not res then
    if csadd then
      redis.call('HSET', KEYS[3], openid, csentry .. (string.sub(csentry, -1) == '|' and '' or ',') .. member)
      new = true
    end
    if new then res = 'N' else res = 'E' end
  end
  out[#out + 1] = res
end
return out
`)

// admitKeys returns the KEYS of the admit script of sends to openids.
func (r *RDB) admitKeys(appID string, openids []string) []string {
	keys := make([]string, 0, 3+len(openids))
	keys = append(keys, r.keys.Suppressed(appID), r.keys.Rest(appID), r.keys.CSWindows(appID))
	for _, o := range openids {
		keys = append(keys, r.keys.CapLog(appID, o))
	}
	return keys
}

func (r *RDB) queueAdmit(ctx context.Context, pipe redis.Pipeliner, a *Admission, openids, members []string) *redis.Cmd {
	args := a.args()
	for i, o := range openids {
		args = append(args, o, members[i])
	}
	// EVAL, not EVALSHA: it shares a pipeline with the ledger's scripts,
	// which a NOSCRIPT answer would make run twice.
	return admit.Eval(ctx, pipe, r.admitKeys(a.AppID, openids), args...)
}

// admitReply decodes the admit script's answers about openids.
func admitReply(res *redis.Cmd, openids []string) ([]Admit, error) {
	list, err := res.StringSlice()
	if err != nil {
		return nil, err
	}
	if len(list) != len(openids) {
		return nil, fmt.Errorf("admit script answered %d of %d sends", len(list), len(openids))
	}
	out := make([]Admit, len(list))
	for i, s := range list {
		if s == "" {
			return nil, errors.New("empty admit answer")
		}
		a := Admit{Verdict: AdmitVerdict(s[0])}
		rest := s[1:]
		switch a.Verdict {
		case AdmitNew, AdmitHeld:
		case AdmitSuppressed:
			if a.Suppression, err = ParseSuppression(openids[i], rest); err != nil {
				return nil, err
			}
		case AdmitRest:
			ms, err := strconv.ParseInt(rest, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("admit answer %q", s)
			}
			a.Until = time.UnixMilli(ms)
		case AdmitCapped:
			u, ms, _ := strings.Cut(rest, "|")
			n, err := strconv.ParseInt(u, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("admit answer %q", s)
			}
			a.Until = time.UnixMilli(n)
			a.Members = strings.Fields(ms)
		case AdmitNoWindow:
			why, v, _ := strings.Cut(rest, "|")
			a.Window = why
			switch why {
			case "closed":
				ms, _ := strconv.ParseInt(v, 10, 64)
				a.WindowStart = time.UnixMilli(ms)
			case "used":
				a.WindowAllowed, _ = strconv.Atoi(v)
			}
		default:
			return nil, fmt.Errorf("admit answer %q", s)
		}
		out[i] = a
	}
	return out, nil
}

// Admit runs admission a for one send to openid, alone (BeginAttempt
// runs it in the same round trip as the attempt).
func (r *RDB) Admit(ctx context.Context, a *Admission, openid string) (Admit, error) {
	pipe := r.c.Pipeline()
	res := r.queueAdmit(ctx, pipe, a, []string{openid}, []string{a.Member})
	if _, err := pipe.Exec(ctx); err != nil {
		return Admit{}, fmt.Errorf("admit: %w", err)
	}
	out, err := admitReply(res, []string{openid})
	if err != nil {
		return Admit{}, fmt.Errorf("admit: %w", err)
	}
	return out[0], nil
}

// release gives back a send's places: ARGV openid, member; KEYS[1] cs
// windows, KEYS[2] the cap log.
var release = redis.NewScript(`
redis.call('ZREM', KEYS[2], ARGV[2])
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local head, ms = string.match(cur, '^([^|]*|[^|]*|[^|]*|)(.*)$')
  if head then
    local keep = {}
    for m in string.gmatch(ms, '[^,]+') do
      if m ~= ARGV[2] then keep[#keep + 1] = m end
    end
    redis.call('HSET', KEYS[1], ARGV[1], head .. table.concat(keep, ','))
  end
end
return 0
`)

// Release gives back the place member (a send that was not made, or that
// WeChat refused) holds in openid's cap log and customer-service window.
func (r *RDB) Release(ctx context.Context, appID, openid, member string) error {
	err := release.Run(ctx, r.c, []string{r.keys.CSWindows(appID), r.keys.CapLog(appID, openid)}, openid, member).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("release: %w", err)
	}
	return nil
}

// CapLog returns the members of openid's cap log with when each was
// admitted, oldest first.
func (r *RDB) CapLog(ctx context.Context, appID, openid string) ([]redis.Z, error) {
	zs, err := r.c.ZRangeWithScores(ctx, r.keys.CapLog(appID, openid), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("cap log: %w", err)
	}
	return zs, nil
}

// unbegin closes attempts of sends that are not to go on now, and notes
// deferred ones. KEYS: the ledger's, KEYS[7] the run's deferred set. ARGV:
// quadruples of openid, mode, reason ("" for none), until (ms). Mode "u"
// takes back an attempt begun for a send its admission stopped before any
// call: the record is as it was before; mode "e" ends an attempt WeChat
// answered (as EndAttempt without a lost answer). Returns the number of
// new deferrals.
var unbegin = redis.NewScript(campaignLua + ledgerLua + `
L.open('', 0)
local n = 0
for i = 1, #ARGV, 4 do
  local openid, mode, reason, untl = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local a = attempt(openid)
  if a and a.open == '1' then
    if mode == 'e' then
      a.open = '0'
      putattempt(openid, a)
    elseif a.n <= 1 and a.lost ~= '1' and a.cmr == '' then
      redis.call('HDEL', KEYS[6], openid)
    else
      a.n, a.open = math.max(a.n - 1, 0), '0'
      putattempt(openid, a)
    end
  end
  if reason ~= '' then
    if redis.call('ZADD', KEYS[7], untl, reason .. ':' .. openid) == 1 then
      redis.call('HINCRBY', KEYS[2], 'deferred:' .. reason, 1)
      n = n + 1
    else
      redis.call('ZADD', KEYS[7], untl, reason .. ':' .. openid)
    end
  end
end
return n
`)

// Deferral is a recipient deferred by the account's protection.
type Deferral struct {
	Reason string
	Until  time.Time
}

// Unbegin closes the attempt BeginAttempt just began for openid when the
// send is not to go on now: answered false takes it back (its admission
// stopped it before any call: the attempt record is as it was before);
// answered true ends it as EndAttempt does for an answer that is not the
// outcome. With d, the recipient is noted deferred (the run's counter
// "deferred:<reason>" counts each recipient once per reason); with s, its
// outcome is recorded in the same round trip (by s.Mode's rules).
func (r *RDB) Unbegin(ctx context.Context, id string, run int, openid, doneState string, answered bool, d *Deferral, s *Settle) (Recorded, error) {
	args := []any{openid, "u", "", 0}
	if answered {
		args[1] = "e"
	}
	if d != nil {
		args[2], args[3] = d.Reason, d.Until.UnixMilli()
	}
	var rec *redis.Cmd
	err := r.withScripts(ctx, func(pipe redis.Pipeliner) {
		// EVAL: a NOSCRIPT answer would make the record after it run
		// before it, and again.
		unbegin.Eval(ctx, pipe, r.ledgerKeys(id, run, r.keys.Deferred(id, run)), args...)
		if s != nil {
			rec = r.queueRecord(ctx, pipe, id, run, doneState, []Settle{*s})
		}
	}, unbegin, recordOutcomes)
	if err != nil {
		return Recorded{}, fmt.Errorf("unbegin: %w", err)
	}
	if rec == nil {
		return Recorded{}, nil
	}
	out, err := recordReply(rec)
	if err != nil {
		return Recorded{}, fmt.Errorf("unbegin: %w", err)
	}
	return out, nil
}

// DeferredNow returns how many of a run's recipients wait for the
// account's protection at now, and the earliest time one of them is due.
func (r *RDB) DeferredNow(ctx context.Context, id string, run int, now time.Time) (int64, time.Time, error) {
	key := r.keys.Deferred(id, run)
	lo := strconv.FormatInt(now.UnixMilli(), 10)
	var n *redis.IntCmd
	var first *redis.ZSliceCmd
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		n = p.ZCount(ctx, key, "("+lo, "+inf")
		first = p.ZRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Min: "(" + lo, Max: "+inf", Count: 1})
		return nil
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("deferred now: %w", err)
	}
	var next time.Time
	if zs := first.Val(); len(zs) > 0 {
		next = time.UnixMilli(int64(zs[0].Score))
	}
	return n.Val(), next, nil
}

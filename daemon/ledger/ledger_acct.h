/* SPDX-License-Identifier: MIT */
/*
 * ledger_acct.h — the ledger side of AccountService and of statements:
 * accounts (create, get, status), ledger entries by keyset pages, the
 * balance at a past instant, and the page-token key.
 *
 * Contract: like ledger.h — every call takes an absolute deadline, runs
 * as one transaction (ledger_exec(): serialization failures retried) and
 * returns enum ledger_rc; err is for logs, never for a client. The
 * permission is decided in the same statement as the read or write:
 * LEDGER_DENIED with err naming it ("can_read on account X"), or, for the
 * admin-only writes, res->denied_code "admin" / "revoked" (nothing was
 * written). Reads check can_read before anything else, so a client
 * without it cannot learn whether an account exists.
 *
 * Statements: entries of one account, newest first by (created_at,
 * entry_id) — a total order, so a keyset cursor neither repeats nor skips
 * an entry however many are written meanwhile (new ones sort before the
 * cursor). As-of balances: the posted balance at t is balance_after_cents
 * of the account's last entry at or before t in that order (0 if none;
 * balance_after = available + pending right after the entry); pending at
 * t is the sum of the account's MANUAL payments as payer created at or
 * before t whose hold was not closed by t (hold_closed_at NULL or later);
 * available = posted - pending. An instant in the future means now.
 */
#ifndef PAYMENTD_LEDGER_ACCT_H
#define PAYMENTD_LEDGER_ACCT_H

#include <stddef.h>
#include <stdint.h>

#include "ledger/acct_validate.h"
#include "ledger/ledger.h"
#include "ledger/page_token.h"

struct ledger_account {
	char account_id[80], currency[8], status[16], kind[16], created_at[40];
	int64_t overdraft_limit_cents, available_cents, pending_cents;
	size_t nmeta;
	char meta_key[ACCT_META_MAX][ACCT_META_KEY_MAX + 1];
	char meta_value[ACCT_META_MAX][ACCT_META_VALUE_MAX + 1];
};

/* Outcome of an admin write. Exactly one of: denied_code set (refused,
 * nothing written), error_code set (ALREADY_EXISTS, NOT_FOUND,
 * FAILED_PRECONDITION, INVALID_ARGUMENT with error for the client;
 * account filled where one exists), or neither (account is the result;
 * changed says whether this call created / changed it). */
struct ledger_acct_res {
	char denied_code[16], denied[128];
	char error_code[24], error[320];
	int changed;
	struct ledger_account account;
};

struct ledger_acct_create_req {
	int64_t client_id;
	const char *account_id; /* never empty: the caller generates one */
	const char *currency;
	int64_t overdraft_limit_cents;
	size_t nmeta;
	const char *const *meta_key, *const *meta_value;
	const char *correlation_id;
};

struct ledger_acct_status_req {
	int64_t client_id;
	const char *account_id, *status, *reason, *correlation_id;
};

struct ledger_entry {
	int64_t entry_id, amount_cents, balance_after_cents;
	char payment_id[64], direction[8], currency[8], created_at[40], kind[16], refund_id[64];
	struct page_pos pos; /* its keyset position */
};

/* A page of entries: start/end are µs bounds (start inclusive, end
 * exclusive) or NULL; after is the cursor (entries strictly older) or
 * NULL for the first page. Up to limit entries go to out[]; *more says
 * whether older ones exist. */
struct ledger_entries_req {
	int64_t client_id;
	const char *account_id;
	const int64_t *start_us, *end_us;
	const struct page_pos *after;
	int limit;
};

/* The 32-byte page-token key (table page_token_keys of 0008), read once
 * per connection; NULL if unavailable (then listings answer UNAVAILABLE
 * or INTERNAL; tokens cannot be made or checked without it). */
const uint8_t *ledger_page_key(struct ledger *l);

enum ledger_rc ledger_acct_create(struct ledger *l, const struct ledger_acct_create_req *q,
    int64_t deadline_ms, struct ledger_acct_res *res, char *err, size_t errlen);
enum ledger_rc ledger_acct_update_status(struct ledger *l, const struct ledger_acct_status_req *q,
    int64_t deadline_ms, struct ledger_acct_res *res, char *err, size_t errlen);
/* LEDGER_DENIED (can_read), LEDGER_NOT_FOUND or LEDGER_OK. */
enum ledger_rc ledger_acct_get(struct ledger *l, int64_t client_id, const char *account_id,
    int64_t deadline_ms, struct ledger_account *a, char *err, size_t errlen);
/* LEDGER_DENIED (can_read), LEDGER_NOT_FOUND or LEDGER_OK. */
enum ledger_rc ledger_acct_entries(struct ledger *l, const struct ledger_entries_req *q,
    int64_t deadline_ms, struct ledger_entry *out, int *n, int *more, char *err, size_t errlen);
/* The balance at as_of_us (see above); LEDGER_DENIED, LEDGER_NOT_FOUND or
 * LEDGER_OK. */
enum ledger_rc ledger_acct_balance_at(struct ledger *l, int64_t client_id, const char *account_id,
    int64_t as_of_us, int64_t deadline_ms, struct ledger_balance *b, char *err, size_t errlen);

#endif

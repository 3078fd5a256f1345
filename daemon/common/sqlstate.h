/* SPDX-License-Identifier: MIT */
/*
 * sqlstate.h — the one SQLSTATE classifier (libc only).
 *
 * Contract: sqlstate_classify() maps Postgres' five-character error code
 * (PG_DIAG_SQLSTATE; NULL or malformed counts as unknown) to what a
 * caller can do about the error. Each caller decides its own policy from
 * the class; the classes only say what the server reported:
 *  - SQLSTATE_RETRY       40001 serialization_failure, 40P01
 *                         deadlock_detected: running the same transaction
 *                         again may well succeed;
 *  - SQLSTATE_ROLLBACK    the rest of class 40 (transaction rolled back,
 *                         integrity violation at commit, completion
 *                         unknown): nothing was committed or it is not
 *                         known; a retry is safe only for idempotent work;
 *  - SQLSTATE_TIMEOUT     57014 query_canceled (statement_timeout);
 *  - SQLSTATE_INVALID     class 22 data_exception: the input was rejected;
 *  - SQLSTATE_CONNECTION  class 08, 57P0x (shutdown, crash recovery) and
 *                         class 53 (out of resources): the server, not the
 *                         statement, is the problem;
 *  - SQLSTATE_OTHER       anything else (constraint, permission, a bug).
 */
#ifndef PAYMENTD_SQLSTATE_H
#define PAYMENTD_SQLSTATE_H

enum sqlstate_class {
	SQLSTATE_OTHER = 0,
	SQLSTATE_RETRY,
	SQLSTATE_ROLLBACK,
	SQLSTATE_TIMEOUT,
	SQLSTATE_INVALID,
	SQLSTATE_CONNECTION,
};

enum sqlstate_class sqlstate_classify(const char *code);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * auth_admin.h — `paymentd client`: the operator's tool for the identity
 * tables of migrations/0004_identity.sql (clients, client_credentials,
 * account_grants, client_limits). docs/clients.md is its manual.
 *
 * Contract: auth_admin_main() runs one subcommand (argv[0]: create, list,
 * revoke, add-credential, revoke-credential, grant, revoke-grant,
 * rotate-token, set-limit, help) against cfg->database_url and returns the
 * process exit status: 0 done, 1 refused or failed (one line on stderr
 * naming the problem; nothing written), 2 usage error. Every statement is
 * parameterized; each command is one transaction, and its result is printed
 * only after it committed. Revocations (client, token, any credential,
 * grant, and grants whose flags shrink) wait after their COMMIT until every
 * transaction that had an id at that moment has ended (payments take theirs
 * before they read the client), so they return only once the payments that
 * read the old state have committed. A new API token is printed once, on stdout, as "token: pd_...";
 * only its SHA-256 reaches the database.
 */
#ifndef PAYMENTD_AUTH_ADMIN_H
#define PAYMENTD_AUTH_ADMIN_H

struct config;

int auth_admin_main(const struct config *cfg, int argc, char **argv);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * version.h — the paymentd release string, shared by `paymentd version`
 * and the paymentd_build_info metric. Override with -DPAYMENTD_VERSION.
 */
#ifndef PAYMENTD_VERSION_H
#define PAYMENTD_VERSION_H

#ifndef PAYMENTD_VERSION
#define PAYMENTD_VERSION "0.1.0"
#endif

#endif

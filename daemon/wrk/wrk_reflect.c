/* SPDX-License-Identifier: MIT */
/*
 * wrk_reflect.c — server reflection (see wrk_reflect.h).
 *
 * The descriptor set comes from `protoc --descriptor_set_out
 * --include_imports --include_source_info` and is linked in with .incbin,
 * so what clients see is exactly what the build compiled. Symbols indexed:
 * packages' messages (nested too), enums and their values, fields,
 * services and methods — what grpcurl asks for with describe.
 */
#include "wrk_reflect.h"
#include "common/util.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The embedded FileDescriptorSet (see Makefile: $(GEN)/descriptors.pb). */
__asm__(".section .rodata\n"
        ".global refl_fds_start\n"
        ".balign 16\n"
        "refl_fds_start:\n"
        ".incbin \"" PAYMENTD_DESCRIPTOR_SET "\"\n"
        ".global refl_fds_end\n"
        "refl_fds_end:\n"
        ".previous\n");
extern const uint8_t refl_fds_start[], refl_fds_end[];

const char *const refl_services[] = {
	"payment.v1.PaymentService",
	"payment.v1.AccountService",
	"grpc.health.v1.Health",
	"grpc.reflection.v1.ServerReflection",
	"grpc.reflection.v1alpha.ServerReflection",
	NULL,
};

struct refl_file {
	char *name;
	uint8_t *bytes;
	size_t len;
	size_t *deps; /* indexes into files[] */
	size_t ndeps;
};

struct refl_sym {
	char *name;
	size_t file;
};

static struct {
	Google__Protobuf__FileDescriptorSet *set;
	struct refl_file *files;
	size_t nfiles;
	struct refl_sym *syms;
	size_t nsyms, capsyms;
} R;

static void
add_sym(const char *prefix, const char *name, size_t file)
{
	size_t n;

	if (R.nsyms == R.capsyms) {
		R.capsyms = R.capsyms ? R.capsyms * 2 : 128;
		R.syms = realloc(R.syms, R.capsyms * sizeof(*R.syms));
		if (R.syms == NULL)
			abort();
	}
	n = strlen(prefix) + strlen(name) + 2;
	R.syms[R.nsyms].name = xmalloc(n);
	snprintf(R.syms[R.nsyms].name, n, "%s%s%s", prefix, prefix[0] ? "." : "", name);
	R.syms[R.nsyms++].file = file;
}

static void
add_enum(const char *prefix, const Google__Protobuf__EnumDescriptorProto *e, size_t file)
{
	size_t i;

	add_sym(prefix, e->name, file);
	/* Enum values live in the enclosing scope, as in C++. */
	for (i = 0; i < e->n_value; i++)
		add_sym(prefix, e->value[i]->name, file);
}

static void
add_message(const char *prefix, const Google__Protobuf__DescriptorProto *m, size_t file)
{
	char full[512];
	size_t i;

	add_sym(prefix, m->name, file);
	snprintf(full, sizeof(full), "%s%s%s", prefix, prefix[0] ? "." : "", m->name);
	for (i = 0; i < m->n_field; i++)
		add_sym(full, m->field[i]->name, file);
	for (i = 0; i < m->n_nested_type; i++)
		add_message(full, m->nested_type[i], file);
	for (i = 0; i < m->n_enum_type; i++)
		add_enum(full, m->enum_type[i], file);
}

static long
file_index(const char *name)
{
	size_t i;

	for (i = 0; i < R.nfiles; i++)
		if (strcmp(R.files[i].name, name) == 0)
			return (long)i;
	return -1;
}

int
refl_init(char *err, size_t errlen)
{
	size_t i, j, k;

	if (R.set != NULL)
		return 0; /* already built (by the supervisor, before fork) */
	R.set = google__protobuf__file_descriptor_set__unpack(
	    NULL, (size_t)(refl_fds_end - refl_fds_start), refl_fds_start);
	if (R.set == NULL || R.set->n_file == 0) {
		snprintf(err, errlen, "embedded descriptor set is unreadable");
		return -1;
	}
	R.nfiles = R.set->n_file;
	R.files = xcalloc(R.nfiles, sizeof(*R.files));
	for (i = 0; i < R.nfiles; i++) {
		Google__Protobuf__FileDescriptorProto *f = R.set->file[i];
		const char *pkg = f->package ? f->package : "";

		R.files[i].name = f->name;
		R.files[i].len = protobuf_c_message_get_packed_size(&f->base);
		R.files[i].bytes = xmalloc(R.files[i].len);
		protobuf_c_message_pack(&f->base, R.files[i].bytes);
		for (j = 0; j < f->n_message_type; j++)
			add_message(pkg, f->message_type[j], i);
		for (j = 0; j < f->n_enum_type; j++)
			add_enum(pkg, f->enum_type[j], i);
		for (j = 0; j < f->n_service; j++) {
			char svc[512];
			add_sym(pkg, f->service[j]->name, i);
			snprintf(svc, sizeof(svc), "%s%s%s", pkg, pkg[0] ? "." : "",
			    f->service[j]->name);
			for (k = 0; k < f->service[j]->n_method; k++)
				add_sym(svc, f->service[j]->method[k]->name, i);
		}
		for (j = 0; j < f->n_extension; j++)
			add_sym(pkg, f->extension[j]->name, i);
	}
	for (i = 0; i < R.nfiles; i++) {
		Google__Protobuf__FileDescriptorProto *f = R.set->file[i];
		R.files[i].deps = xcalloc(f->n_dependency + 1, sizeof(size_t));
		for (j = 0; j < f->n_dependency; j++) {
			long d = file_index(f->dependency[j]);
			if (d < 0) {
				snprintf(err, errlen, "descriptor set lacks %s (needed by %s)",
				    f->dependency[j], f->name);
				return -1;
			}
			R.files[i].deps[R.files[i].ndeps++] = (size_t)d;
		}
	}
	return 0;
}

/* Marks file i and everything it imports, transitively. */
static void
mark(size_t i, unsigned char *seen)
{
	size_t j;

	if (seen[i])
		return;
	seen[i] = 1;
	for (j = 0; j < R.files[i].ndeps; j++)
		mark(R.files[i].deps[j], seen);
}

static int
answer_files(long root, Grpc__Reflection__V1__ServerReflectionResponse *rs,
    Grpc__Reflection__V1__FileDescriptorResponse *fdr)
{
	unsigned char *seen = xcalloc(R.nfiles, 1);
	size_t i, n = 0;

	mark((size_t)root, seen);
	fdr->file_descriptor_proto = xcalloc(R.nfiles, sizeof(ProtobufCBinaryData));
	/* The requested file first, then its dependencies. */
	fdr->file_descriptor_proto[n].data = R.files[root].bytes;
	fdr->file_descriptor_proto[n++].len = R.files[root].len;
	for (i = 0; i < R.nfiles; i++)
		if (seen[i] && (long)i != root) {
			fdr->file_descriptor_proto[n].data = R.files[i].bytes;
			fdr->file_descriptor_proto[n++].len = R.files[i].len;
		}
	fdr->n_file_descriptor_proto = n;
	rs->message_response_case =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
	rs->file_descriptor_response = fdr;
	free(seen);
	return 0;
}

static long
symbol_file(const char *sym)
{
	size_t i;

	if (sym[0] == '.')
		sym++;
	for (i = 0; i < R.nsyms; i++)
		if (strcmp(R.syms[i].name, sym) == 0)
			return (long)R.syms[i].file;
	return -1;
}

int
refl_answer(const uint8_t *req, size_t len, uint8_t **out, size_t *outlen)
{
	Grpc__Reflection__V1__ServerReflectionRequest *rq;
	Grpc__Reflection__V1__ServerReflectionResponse rs =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
	Grpc__Reflection__V1__FileDescriptorResponse fdr =
	    GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
	Grpc__Reflection__V1__ListServiceResponse lsr =
	    GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
	Grpc__Reflection__V1__ServiceResponse svc[8], *svcp[8];
	Grpc__Reflection__V1__ErrorResponse er = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
	Grpc__Reflection__V1__ExtensionNumberResponse enr =
	    GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT;
	char msg[512];
	long f;
	size_t i, n_unknown;

	rq = grpc__reflection__v1__server_reflection_request__unpack(NULL, len, req);
	if (rq == NULL)
		return -1;
	rs.valid_host = rq->host;
	rs.original_request = rq;
	switch (rq->message_request_case) {
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
		for (i = 0; refl_services[i] != NULL && i < 8; i++) {
			grpc__reflection__v1__service_response__init(&svc[i]);
			svc[i].name = (char *)refl_services[i];
			svcp[i] = &svc[i];
		}
		lsr.n_service = i;
		lsr.service = svcp;
		rs.message_response_case =
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
		rs.list_services_response = &lsr;
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
		f = file_index(rq->file_by_filename);
		if (f < 0) {
			snprintf(msg, sizeof(msg), "file not found: %s", rq->file_by_filename);
			goto not_found;
		}
		answer_files(f, &rs, &fdr);
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
		f = symbol_file(rq->file_containing_symbol);
		if (f < 0) {
			snprintf(
			    msg, sizeof(msg), "symbol not found: %s", rq->file_containing_symbol);
			goto not_found;
		}
		answer_files(f, &rs, &fdr);
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
		snprintf(msg, sizeof(msg), "extension not found: %s(%d)",
		    rq->file_containing_extension ? rq->file_containing_extension->containing_type
		                                  : "",
		    rq->file_containing_extension ? rq->file_containing_extension->extension_number
		                                  : 0);
		goto not_found;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
		/* None of our messages declare extension ranges: an empty list
		 * for known types, NOT_FOUND for unknown ones. */
		if (symbol_file(rq->all_extension_numbers_of_type) < 0) {
			snprintf(msg, sizeof(msg), "type not found: %s",
			    rq->all_extension_numbers_of_type);
			goto not_found;
		}
		enr.base_type_name = rq->all_extension_numbers_of_type;
		rs.message_response_case =
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
		rs.all_extension_numbers_response = &enr;
		break;
	default:
		er.error_code = 3; /* INVALID_ARGUMENT */
		er.error_message = (char *)"empty or unknown reflection request";
		rs.message_response_case =
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
		rs.error_response = &er;
		break;
	}
	goto pack;
not_found:
	er.error_code = 5; /* NOT_FOUND */
	er.error_message = msg;
	rs.message_response_case =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
	rs.error_response = &er;
pack:
	/* Echo the request without its unknown fields: protobuf-c accepts
	 * field number 0 in an overlong tag and would re-encode it in a form
	 * no decoder accepts (found by fuzz_reflect). */
	n_unknown = rq->base.n_unknown_fields;
	rq->base.n_unknown_fields = 0;
	*outlen = protobuf_c_message_get_packed_size(&rs.base);
	*out = xmalloc(*outlen ? *outlen : 1);
	protobuf_c_message_pack(&rs.base, *out);
	rq->base.n_unknown_fields = n_unknown;
	free(fdr.file_descriptor_proto);
	grpc__reflection__v1__server_reflection_request__free_unpacked(rq, NULL);
	return 0;
}

/* FastCGI 1.0 records (the FastCGI specification, sections 3 and 5), as
 * the fastcgi handler speaks them: the records it writes (BEGIN_REQUEST
 * as a RESPONDER, PARAMS, STDIN) and an incremental, pure parser of the
 * ones it accepts (STDOUT, STDERR, END_REQUEST for request id 1). Unit
 * tests and a fuzz target drive the parser. */
#ifndef ED_HTTP_FASTCGI_RECORD_H
#define ED_HTTP_FASTCGI_RECORD_H

#include "ed_core.h"

#define ED_FCGI_VERSION          1
#define ED_FCGI_HEADER_LEN       8
#define ED_FCGI_CONTENT_MAX      65535
#define ED_FCGI_REQUEST_ID       1

enum {
    ED_FCGI_BEGIN_REQUEST = 1,
    ED_FCGI_ABORT_REQUEST,
    ED_FCGI_END_REQUEST,
    ED_FCGI_PARAMS,
    ED_FCGI_STDIN,
    ED_FCGI_STDOUT,
    ED_FCGI_STDERR,
    ED_FCGI_DATA,
    ED_FCGI_GET_VALUES,
    ED_FCGI_GET_VALUES_RESULT,
    ED_FCGI_UNKNOWN_TYPE
};

#define ED_FCGI_RESPONDER        1
#define ED_FCGI_KEEP_CONN        1

/* END_REQUEST's protocolStatus. */
enum {
    ED_FCGI_REQUEST_COMPLETE = 0,
    ED_FCGI_CANT_MPX_CONN,
    ED_FCGI_OVERLOADED,
    ED_FCGI_UNKNOWN_ROLE
};

/* Writes a record header for content of clen bytes (at most
 * ED_FCGI_CONTENT_MAX) followed by pad bytes of padding; returns p after
 * it. */
u_char *ed_fcgi_header(u_char *p, int type, size_t clen, size_t pad);

/* The padding that brings a record of clen bytes of content to a
 * multiple of 8. */
#define ed_fcgi_pad(clen) ((8 - ((clen) & 7)) & 7)

/* Writes BEGIN_REQUEST (16 bytes): role RESPONDER, FCGI_KEEP_CONN when
 * keep. Returns p after it. */
u_char *ed_fcgi_begin_request(u_char *p, bool keep);

/* The bytes of one name-value pair (section 3.4: lengths of 1 byte below
 * 128, else 4 with the high bit set). */
size_t ed_fcgi_pair_len(size_t nlen, size_t vlen);
/* Writes it; returns p after it. */
u_char *ed_fcgi_pair(u_char *p, const char *name, size_t nlen,
                     const char *value, size_t vlen);

/* The bytes the records of a stream of len bytes take (records of at
 * most ED_FCGI_CONTENT_MAX bytes, each padded to 8), without the empty
 * record that ends the stream. */
size_t ed_fcgi_stream_len(size_t len);
/* Writes data[0..len) as records of type (not the empty one); returns p
 * after them. */
u_char *ed_fcgi_stream(u_char *p, int type, const char *data, size_t len);

/* Events of the parser. */
enum {
    ED_FCGI_EV_STDOUT = 1,   /* content bytes of STDOUT */
    ED_FCGI_EV_STDERR,       /* content bytes of STDERR */
    ED_FCGI_EV_END           /* END_REQUEST, protocolStatus complete */
};

/* The parser's state: all zero (memset) before the first record. */
typedef struct {
    int       state;
    u_char    head[ED_FCGI_HEADER_LEN];
    size_t    hlen;         /* header bytes gathered */
    int       type;
    size_t    left;         /* content bytes left of the record */
    size_t    pad;          /* padding left */
    u_char    end[8];       /* END_REQUEST's body */
    size_t    elen;
    uint32_t  app_status;   /* END_REQUEST's appStatus */
    int       protocol_status;
    /* Why the input is invalid (ED_ERROR): "version 2", "request id 3",
     * "type 9", "END_REQUEST of 4 bytes", "protocolStatus OVERLOADED",
     * "record after END_REQUEST". */
    char      error[48];
    unsigned  records;      /* records begun */
    unsigned  ended:1;      /* END_REQUEST parsed */
    unsigned  mid:1;        /* inside a record */
} ed_fcgi_parser_t;

/* Parses from p[0..len). Returns:
 *   ED_OK     an event (*ev): for STDOUT and STDERR, content
 *             p[*off .. *off + *n) (n > 0: an empty record, the end of
 *             that stream, gives no event); for END, app_status and
 *             protocol_status are set. *used bytes were consumed (the
 *             content included); call again with the rest;
 *   ED_AGAIN  all of p consumed, no event (a header or padding in part);
 *   ED_ERROR  invalid (fp->error says why); any byte after END_REQUEST
 *             is one.
 * Records of any size arrive split anywhere: the parser keeps a header
 * in part, and gives content as it comes. */
int ed_fcgi_parse(ed_fcgi_parser_t *fp, const char *p, size_t len,
                  size_t *used, int *ev, size_t *off, size_t *n);

/* Whether the input may end here: after END_REQUEST only. */
#define ed_fcgi_done(fp) ((fp)->ended)

#endif /* ED_HTTP_FASTCGI_RECORD_H */

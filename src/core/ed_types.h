/* Forward typedefs shared across the tree, so headers need not include
 * each other. */
#ifndef ED_TYPES_H
#define ED_TYPES_H

typedef struct ed_pool_s ed_pool_t;
typedef struct ed_str_s ed_str_t;
typedef struct ed_array_s ed_array_t;
typedef struct ed_log_s ed_log_t;
typedef struct ed_node_s ed_node_t;
typedef struct ed_conf_s ed_conf_t;
typedef struct ed_key_s ed_key_t;
typedef struct ed_module_s ed_module_t;
typedef struct ed_cycle_s ed_cycle_t;
typedef struct ed_listener_s ed_listener_t;
typedef struct ed_worker_s ed_worker_t;
typedef struct ed_loop_s ed_loop_t;
typedef struct ed_event_s ed_event_t;
typedef struct ed_timer_s ed_timer_t;
typedef struct ed_defer_s ed_defer_t;
typedef struct ed_stream_s ed_stream_t;
typedef struct ed_buf_pool_s ed_buf_pool_t;
typedef struct ed_conn_s ed_conn_t;
typedef union ed_peer_addr_u ed_peer_addr_t;
typedef struct ed_http_server_s ed_http_server_t;
typedef struct ed_http_location_s ed_http_location_t;
typedef struct ed_http_request_s ed_http_request_t;
typedef struct ed_explain_s ed_explain_t;
typedef struct ed_handover_msg_s ed_handover_msg_t;

#endif /* ED_TYPES_H */

/*
 * village.c: a village point's day through the Daiban C ABI, using only daiban.h and the
 * library. It opens a store, registers tickets, records an event, lists them, prints a
 * receipt, shows the sync status, enrolls with the township server and syncs when one is
 * given (with a progress callback), and walks every error path a host can reach, checking
 * each status code.
 *
 * Build and run (from the repository root, after `cargo build -p daiban-ffi`):
 *
 *   cc -std=c11 -Wall -Wextra -Werror -I ffi/include examples/c/village.c \
 *      -L target/debug -ldaiban -Wl,-rpath,"$PWD/target/debug" -o /tmp/village
 *   /tmp/village "$(mktemp -d)"                         # offline
 *   DAIBAN_ENROLL_CODE=7KQM-X2PA-9DHT \
 *   /tmp/village "$(mktemp -d)" http://127.0.0.1:8700   # enroll, then sync with a township
 *
 * The server must be a township whose directory holds point 101 (as the demo directory
 * does); the program syncs as device 1 of point 101. A new device enrolls once, with the
 * code the township admin issued for it (`sync-server enroll-code --data DIR --point 101
 * --device 1`), taken here from DAIBAN_ENROLL_CODE; without it the store must be enrolled
 * already.
 *
 * Exit status: 0 when every call returned what was expected, 1 otherwise, 2 on bad usage.
 * ffi/tests/c_example.rs builds and runs it (also under valgrind) in CI.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daiban.h"

static int failures = 0;

/* Print a call's status (and its message when it failed) and check it is the expected one. */
static void expect(const char *what, daiban_status got, daiban_status want) {
    char *message = NULL;
    if (got != DAIBAN_OK) {
        message = daiban_last_error_message();
    }
    printf("%-44s %3u %s", what, (unsigned)got, got == want ? "ok" : "UNEXPECTED");
    if (message != NULL) {
        printf("  %s", message);
    }
    printf("\n");
    if (got != want) {
        failures++;
        printf("    expected %u: %s\n", (unsigned)want, daiban_status_message(want));
    }
    if (daiban_string_free(message) != DAIBAN_OK) {
        failures++;
    }
}

/* Free a string the library returned; a failure here is a bug worth counting. */
static void release(char *s) {
    if (daiban_string_free(s) != DAIBAN_OK) {
        printf("daiban_string_free failed\n");
        failures++;
    }
}

/* The ticket number inside a registration or view JSON ("number":"<12 digits>"), copied into
 * `out` (13 bytes). A real app would use its JSON library. */
static int ticket_number(const char *json, char out[13]) {
    const char *key = "\"number\":\"";
    const char *p = json != NULL ? strstr(json, key) : NULL;
    if (p == NULL) {
        return 0;
    }
    p += strlen(key);
    if (strlen(p) < 12) {
        return 0;
    }
    memcpy(out, p, 12);
    out[12] = '\0';
    return 1;
}

/* A registration form for 失业证办理 (SB001); `materials` lists what the applicant handed in. */
static void form(char *buf, size_t len, const char *name, const char *id, const char *phone,
                 const char *materials) {
    snprintf(buf, len,
             "{\"item_code\": \"SB001\", \"applicant_name\": \"%s\", \"id_number\": \"%s\","
             " \"phone\": \"%s\", \"village\": \"东坪村\", \"group\": \"3组\","
             " \"materials\": [%s]}",
             name, id, phone, materials);
}

/* The number after "key": in a JSON text, or -1. A real app would use its JSON library. */
static long json_long(const char *json, const char *key) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *p = json != NULL ? strstr(json, pattern) : NULL;
    return p != NULL ? strtol(p + strlen(pattern), NULL, 10) : -1;
}

/* What the sync progress callback saw; the library passes it back as user_data. */
struct sync_progress {
    int calls;
    long last_round;
};

/* Called by the library after every round trip of a sync, on the thread that called
 * daiban_store_sync_progress. The JSON is valid only during the call; a real app would
 * parse it and move a progress bar. */
static void on_sync_progress(void *user_data, const char *report_json) {
    struct sync_progress *progress = user_data;
    progress->calls++;
    progress->last_round = json_long(report_json, "rounds");
    printf("    sync round %ld: uploaded %ld, downloaded %ld, refused %ld\n",
           progress->last_round, json_long(report_json, "uploaded"),
           json_long(report_json, "downloaded"), json_long(report_json, "refused"));
}

/* Print the sync status (what waits to upload, what the server refused, the last sync) and
 * check how many tickets wait. */
static void show_sync_status(daiban_store *store, const char *what, long want_pending) {
    char *status = NULL;
    expect(what, daiban_store_sync_status(store, &status), DAIBAN_OK);
    if (status == NULL) {
        return;
    }
    long pending = json_long(status, "pending");
    printf("    pending %ld, refused %ld, synced %ld, cursor %ld, last sync: %s\n", pending,
           json_long(status, "refused"), json_long(status, "synced"), json_long(status, "cursor"),
           strstr(status, "\"last_sync\":null") != NULL       ? "none"
           : strstr(status, "\"outcome\":\"ok\"") != NULL ? "ok"
                                                           : "did not finish");
    if (pending != want_pending) {
        printf("    expected %ld pending\n", want_pending);
        failures++;
    }
    release(status);
}

static const char *ALL_MATERIALS =
    "{\"name\": \"身份证复印件\", \"received\": true},"
    " {\"name\": \"户口本复印件\", \"received\": true},"
    " {\"name\": \"解除劳动合同证明\", \"received\": true},"
    " {\"name\": \"一寸照片2张\", \"received\": true}";

int main(int argc, char **argv) {
    if (argc != 2 && argc != 3) {
        fprintf(stderr,
                "usage: %s DIR [SERVER_URL]   (the store is created as DIR/village.db;\n"
                "       with SERVER_URL, e.g. http://127.0.0.1:8700, it syncs with that township,\n"
                "       enrolling first with the code in DAIBAN_ENROLL_CODE if set)\n",
                argv[0]);
        return 2;
    }
    const char *server_url = argc == 3 ? argv[2] : NULL;
    const char *enroll_code = getenv("DAIBAN_ENROLL_CODE");
    char path[4096];
    snprintf(path, sizeof path, "%s/village.db", argv[1]);
    uint8_t key[DAIBAN_KEY_LEN];
    for (size_t i = 0; i < sizeof key; i++) {
        key[i] = (uint8_t)(0xA0 + i); /* a real app takes this from the Android keystore */
    }

    printf("libdaiban %s\n", daiban_version());

    /* Open the store. */
    daiban_store *store = NULL;
    expect("open", daiban_store_open(path, key, sizeof key, 101, 1, "李代理", &store), DAIBAN_OK);
    if (store == NULL) {
        return 1;
    }

    /* Register three tickets; the third is missing a material, which is a warning. */
    char numbers[3][13] = {{0}};
    const char *people[3][3] = {
        {"王秀英", "431023198503120023", "13800138000"},
        {"李建国", "43102319620718041X", "13912345678"},
        {"张春花", "43102320010901007X", "15012345678"},
    };
    for (int i = 0; i < 3; i++) {
        char buf[1024];
        form(buf, sizeof buf, people[i][0], people[i][1], people[i][2],
             i < 2 ? ALL_MATERIALS
                   : "{\"name\": \"身份证复印件\", \"received\": true},"
                     " {\"name\": \"户口本复印件\", \"received\": true}");
        char *registered = NULL;
        expect("register", daiban_store_register(store, buf, &registered), DAIBAN_OK);
        if (!ticket_number(registered, numbers[i])) {
            printf("    no ticket number in the result\n");
            failures++;
        } else {
            printf("    ticket %s%s\n", numbers[i],
                   strstr(registered, "materials_missing") != NULL ? "  (尚缺材料)" : "");
        }
        release(registered);
    }

    /* The applicant of the first ticket withdraws: an agent may record that. */
    char *view = NULL;
    expect("append withdrawn",
           daiban_store_append(store, numbers[0], "{\"kind\": \"withdrawn\", \"note\": \"申请人撤回\"}",
                               &view),
           DAIBAN_OK);
    if (view == NULL || strstr(view, "\"status\":\"withdrawn\"") == NULL) {
        printf("    the view does not say withdrawn\n");
        failures++;
    }
    release(view);

    /* One ticket, with status, deadline, light and 需核对. */
    view = NULL;
    expect("get", daiban_store_get(store, numbers[1], &view), DAIBAN_OK);
    if (view != NULL) {
        printf("    status registered: %s, needs_review false: %s\n",
               strstr(view, "\"status\":\"registered\"") ? "yes" : "no",
               strstr(view, "\"needs_review\":false") ? "yes" : "no");
    }
    release(view);

    /* The list (masked), a second page, and what is due. */
    char *page = NULL;
    expect("search all", daiban_store_search(store, "{\"page_size\": 2}", &page), DAIBAN_OK);
    if (page != NULL) {
        printf("    %s\n", strstr(page, "\"total\":3") ? "3 tickets in total" : page);
    }
    release(page);
    page = NULL;
    expect("search page 2", daiban_store_search(store, "{\"page_size\": 2, \"page\": 1}", &page),
           DAIBAN_OK);
    release(page);
    page = NULL;
    expect("due", daiban_store_due(store, 0, &page), DAIBAN_OK);
    release(page);

    /* The printed receipt. */
    char *receipt = NULL;
    expect("receipt", daiban_store_receipt(store, numbers[1], &receipt), DAIBAN_OK);
    if (receipt != NULL) {
        fputs(receipt, stdout);
    }
    release(receipt);

    /* Sync: offline, the status says what waits to upload. With a server, sync now, with a
     * progress callback (a real app runs this on a worker thread; the UI thread can keep
     * searching the same handle meanwhile, and a cancel button calls daiban_store_cancel). */
    show_sync_status(store, "sync_status", 3);
    if (server_url == NULL) {
        printf("sync: no server URL given, staying offline\n");
    } else {
        /* Once per device: register its key with the township, using the admin's code. An
         * https:// server also takes its CA certificate (PEM text) instead of NULL. */
        if (enroll_code != NULL) {
            char *enrolled = NULL;
            expect("enroll", daiban_store_enroll(store, server_url, NULL, enroll_code, &enrolled),
                   DAIBAN_OK);
            if (enrolled != NULL) {
                printf("    enrolled: %s\n", enrolled);
            }
            release(enrolled);
        }
        struct sync_progress progress = {0, 0};
        char *report = NULL;
        daiban_status st =
            daiban_store_sync_progress(store, server_url, on_sync_progress, &progress, &report);
        if (st == DAIBAN_REVOKED && report != NULL) {
            /* The township revoked this tablet: its store is wiped. The report lists, masked,
             * the tickets the township never received, for the agent to redo there. */
            printf("    revoked: %s\n", report);
            release(report);
            report = NULL;
        }
        expect("sync_progress", st, DAIBAN_OK);
        if (report != NULL) {
            long rounds = json_long(report, "rounds");
            printf("    %d progress call(s) for %ld round trip(s); uploaded %ld\n", progress.calls,
                   rounds, json_long(report, "uploaded"));
            if (progress.calls < 1 || progress.calls != rounds || progress.last_round != rounds ||
                json_long(report, "uploaded") != 3) {
                printf("    the progress calls do not match the report\n");
                failures++;
            }
        }
        release(report);
        show_sync_status(store, "sync_status after sync", 0);
    }

    /* --- Every error path a host can reach; out-parameters must stay as they were. --- */
    char *out = NULL;
    char bad_form[1024];
    form(bad_form, sizeof bad_form, "赵四", "431023198503120024", "13800138000", ALL_MATERIALS);
    expect("register: wrong ID check character", daiban_store_register(store, bad_form, &out),
           DAIBAN_FORM);
    form(bad_form, sizeof bad_form, "赵四", "431023198503120023", "12345", ALL_MATERIALS);
    expect("register: bad mobile", daiban_store_register(store, bad_form, &out), DAIBAN_FORM);
    expect("register: malformed JSON", daiban_store_register(store, "{\"item_code\": ", &out),
           DAIBAN_INVALID_JSON);
    expect("register: JSON of the wrong shape", daiban_store_register(store, "[1, 2]", &out),
           DAIBAN_INVALID_JSON);
    expect("register: invalid UTF-8", daiban_store_register(store, "{\"\xff\xfe\": 1}", &out),
           DAIBAN_INVALID_UTF8);
    expect("register: NULL form", daiban_store_register(store, NULL, &out), DAIBAN_NULL_ARGUMENT);
    expect("register: NULL out", daiban_store_register(store, bad_form, NULL),
           DAIBAN_NULL_ARGUMENT);
    expect("register: NULL store", daiban_store_register(NULL, bad_form, &out),
           DAIBAN_NULL_ARGUMENT);
    expect("append: an agent cannot complete",
           daiban_store_append(store, numbers[1], "{\"kind\": \"completed\"}", &out), DAIBAN_EVENT);
    expect("append: withdrawn twice",
           daiban_store_append(store, numbers[0], "{\"kind\": \"withdrawn\"}", &out), DAIBAN_EVENT);
    expect("append: unknown kind",
           daiban_store_append(store, numbers[1], "{\"kind\": \"teleported\"}", &out),
           DAIBAN_INVALID_JSON);
    expect("get: wrong check digit", daiban_store_get(store, "999999999990", &out), DAIBAN_NUMBER);
    expect("get: not a number", daiban_store_get(store, "abc", &out), DAIBAN_NUMBER);
    expect("get: no such ticket", daiban_store_get(store, "999999999999", &out), DAIBAN_NOT_FOUND);
    expect("receipt: no such ticket", daiban_store_receipt(store, "999999999999", &out),
           DAIBAN_NOT_FOUND);
    expect("search: malformed query", daiban_store_search(store, "{\"page\": }", &out),
           DAIBAN_INVALID_JSON);
    expect("set_catalog: not JSON", daiban_store_set_catalog(store, "catalog"),
           DAIBAN_INVALID_JSON);
    expect("set_catalog: not a catalog", daiban_store_set_catalog(store, "{\"items\": 1}"),
           DAIBAN_CATALOG);
    expect("set_calendar: bad line",
           daiban_store_set_calendar(store, "date,kind,name\n2027-02-30,holiday,春节\n"),
           DAIBAN_CALENDAR);
    expect("sync_status: NULL out", daiban_store_sync_status(store, NULL), DAIBAN_NULL_ARGUMENT);
    expect("sync_progress: NULL server URL",
           daiban_store_sync_progress(store, NULL, on_sync_progress, NULL, &out),
           DAIBAN_NULL_ARGUMENT);
    expect("enroll: NULL code", daiban_store_enroll(store, "http://127.0.0.1:1", NULL, NULL, &out),
           DAIBAN_NULL_ARGUMENT);
    if (server_url == NULL) {
        expect("sync: not enrolled", daiban_store_sync(store, "http://127.0.0.1:1", &out),
               DAIBAN_NOT_ENROLLED);
    } else {
        expect("sync: no server listening", daiban_store_sync(store, "http://127.0.0.1:1", &out),
               DAIBAN_SYNC);
        expect("sync: https without its CA", daiban_store_sync(store, "https://127.0.0.1:1", &out),
               DAIBAN_SYNC);
    }
    expect("cancel with nothing running", daiban_store_cancel(store), DAIBAN_OK);
    if (out != NULL) {
        printf("an out-parameter was written on failure\n");
        failures++;
    }

    /* Strings: a double free and a foreign pointer are refused, not crashed on. */
    char *catalog = NULL;
    expect("catalog", daiban_store_catalog(store, &catalog), DAIBAN_OK);
    expect("string_free", daiban_string_free(catalog), DAIBAN_OK);
    expect("string_free again (double free)", daiban_string_free(catalog), DAIBAN_INVALID_STRING);
    char mine[] = "not from the library";
    expect("string_free of a foreign string", daiban_string_free(mine), DAIBAN_INVALID_STRING);
    expect("string_free NULL", daiban_string_free(NULL), DAIBAN_OK);

    /* Close; a freed handle is refused, and so is freeing it twice. */
    expect("free", daiban_store_free(store), DAIBAN_OK);
    expect("search after free", daiban_store_search(store, "{}", &out), DAIBAN_INVALID_HANDLE);
    expect("free again (double free)", daiban_store_free(store), DAIBAN_INVALID_HANDLE);
    expect("free NULL", daiban_store_free(NULL), DAIBAN_OK);

    /* Reopen: a wrong key and a short key are refused; the right key finds every ticket. */
    daiban_store *again = NULL;
    uint8_t wrong[DAIBAN_KEY_LEN];
    memcpy(wrong, key, sizeof wrong);
    wrong[0] ^= 1;
    expect("open with a wrong key",
           daiban_store_open(path, wrong, sizeof wrong, 101, 1, "李代理", &again), DAIBAN_WRONG_KEY);
    expect("open with a 16-byte key", daiban_store_open(path, key, 16, 101, 1, "李代理", &again),
           DAIBAN_KEY_LENGTH);
    expect("open with NULL path", daiban_store_open(NULL, key, sizeof key, 101, 1, "李代理", &again),
           DAIBAN_NULL_ARGUMENT);
    if (again != NULL) {
        printf("store_out was written on failure\n");
        failures++;
    }
    expect("open with the right key",
           daiban_store_open(path, key, sizeof key, 101, 1, "李代理", &again), DAIBAN_OK);
    page = NULL;
    expect("search after reopen", daiban_store_search(again, "{}", &page), DAIBAN_OK);
    if (page == NULL || strstr(page, "\"total\":3") == NULL) {
        printf("    the reopened store does not hold the 3 tickets\n");
        failures++;
    }
    release(page);
    expect("free", daiban_store_free(again), DAIBAN_OK);

    printf("%s: %d unexpected result(s)\n", failures == 0 ? "PASS" : "FAIL", failures);
    return failures == 0 ? 0 : 1;
}

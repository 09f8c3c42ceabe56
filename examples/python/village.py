#!/usr/bin/env python3
r"""A second host for libdaiban: Python ctypes, driving the library the way an Android app does
through JNA (load the shared library, declare each function, pass UTF-8 bytes and JSON, take
strings back and free them, turn status codes into exceptions).

    cargo build -p daiban-ffi
    python3 examples/python/village.py target/debug/libdaiban.so "$(mktemp -d)"
    DAIBAN_ENROLL_CODE=7KQM-X2PA-9DHT \
    python3 examples/python/village.py target/debug/libdaiban.so "$(mktemp -d)" \
        http://127.0.0.1:8700

With a township server's URL it enrolls as device 1 of point 101 (the code its admin issued,
from DAIBAN_ENROLL_CODE; without it the store must be enrolled already) and syncs.

Exit status 0 when every call did what was expected; ffi/tests/python_host.rs runs it in CI.
Only the standard library is used.
"""

import ctypes
import json
import os
import sys
import threading

# Status codes from daiban.h (numbers are fixed forever).
OK = 0
NULL_ARGUMENT = 1
INVALID_UTF8 = 2
INVALID_JSON = 3
INVALID_HANDLE = 4
INVALID_STRING = 5
KEY_LENGTH = 6
FORM = 100
NUMBER = 101
EVENT = 104
NOT_FOUND = 105
WRONG_KEY = 200
INTERRUPTED = 205
SYNC = 300
REVOKED = 301
NOT_ENROLLED = 302


class DaibanError(Exception):
    """A failed call: the status code and the library's message (Chinese, for the agent)."""

    def __init__(self, status, message, report=None):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.report = report  # a revoked device's sync: what its wiped store lost


class Library:
    """The C functions, declared once, as a JNA interface would."""

    def __init__(self, path):
        lib = ctypes.CDLL(path)
        P = ctypes.c_void_p  # every char * the library returns is kept as a raw pointer
        S = ctypes.c_uint32  # daiban_status
        C = ctypes.c_char_p  # const char * arguments
        out = ctypes.POINTER(ctypes.c_void_p)
        sigs = {
            "daiban_version": (ctypes.c_char_p, []),
            "daiban_status_message": (ctypes.c_char_p, [ctypes.c_uint32]),
            "daiban_last_error_message": (P, []),
            "daiban_string_free": (S, [P]),
            "daiban_store_open": (S, [C, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32,
                                      ctypes.c_uint32, C, out]),
            "daiban_store_free": (S, [P]),
            "daiban_store_cancel": (S, [P]),
            "daiban_store_set_catalog": (S, [P, C]),
            "daiban_store_catalog": (S, [P, out]),
            "daiban_store_set_calendar": (S, [P, C]),
            "daiban_store_calendar": (S, [P, out]),
            "daiban_store_register": (S, [P, C, out]),
            "daiban_store_append": (S, [P, C, C, out]),
            "daiban_store_get": (S, [P, C, out]),
            "daiban_store_search": (S, [P, C, out]),
            "daiban_store_due": (S, [P, ctypes.c_uint32, out]),
            "daiban_store_receipt": (S, [P, C, out]),
            "daiban_store_enroll": (S, [P, C, C, C, out]),
            # The progress callback (a CFUNCTYPE, or None) is passed as a plain pointer here.
            "daiban_store_sync_tls": (S, [P, C, C, P, P, out]),
            "daiban_store_sync_status": (S, [P, out]),
        }
        for name, (restype, argtypes) in sigs.items():
            f = getattr(lib, name)
            f.restype = restype
            f.argtypes = argtypes
        self.lib = lib

    def take(self, ptr):
        """Copy a library string into Python and free it (exactly once)."""
        if not ptr:
            return None
        try:
            return ctypes.string_at(ptr).decode("utf-8")
        finally:
            status = self.lib.daiban_string_free(ptr)
            if status != OK:
                raise DaibanError(status, "daiban_string_free failed")

    def check(self, status, report=None):
        if status != OK:
            message = self.take(self.lib.daiban_last_error_message()) or ""
            raise DaibanError(status, message, report)

    def call_out(self, fn, *args):
        """A call whose last parameter is a char ** out-parameter; returns the string."""
        out = ctypes.c_void_p(None)
        self.check(fn(*args, ctypes.byref(out)))
        return self.take(out.value)


def utf8(s):
    return s.encode("utf-8")


class Store:
    """What the app holds: one handle, shared by its threads, freed once."""

    def __init__(self, lib, path, key, point=101, device=1, agent="李代理"):
        self.lib = lib
        handle = ctypes.c_void_p(None)
        lib.check(lib.lib.daiban_store_open(utf8(path), key, len(key), point, device,
                                            utf8(agent), ctypes.byref(handle)))
        self.handle = handle

    def register(self, form):
        return json.loads(self.lib.call_out(self.lib.lib.daiban_store_register, self.handle,
                                            utf8(json.dumps(form, ensure_ascii=False))))

    def append(self, number, draft):
        return json.loads(self.lib.call_out(self.lib.lib.daiban_store_append, self.handle,
                                            utf8(number), utf8(json.dumps(draft))))

    def get(self, number):
        return json.loads(self.lib.call_out(self.lib.lib.daiban_store_get, self.handle,
                                            utf8(number)))

    def search(self, query):
        return json.loads(self.lib.call_out(self.lib.lib.daiban_store_search, self.handle,
                                            utf8(json.dumps(query))))

    def due(self, page=0):
        return json.loads(self.lib.call_out(self.lib.lib.daiban_store_due, self.handle, page))

    def receipt(self, number):
        return self.lib.call_out(self.lib.lib.daiban_store_receipt, self.handle, utf8(number))

    def catalog(self):
        return json.loads(self.lib.call_out(self.lib.lib.daiban_store_catalog, self.handle))

    def enroll(self, url, code, ca_pem=None):
        """Once per device: register with the township using its admin's one-time code."""
        return json.loads(self.lib.call_out(self.lib.lib.daiban_store_enroll, self.handle,
                                            utf8(url), ca_pem and utf8(ca_pem), utf8(code)))

    def sync(self, url, ca_pem=None):
        out = ctypes.c_void_p(None)
        status = self.lib.lib.daiban_store_sync_tls(self.handle, utf8(url),
                                                    ca_pem and utf8(ca_pem), None, None,
                                                    ctypes.byref(out))
        # Written on OK, and on REVOKED (the one failure that writes it).
        report = self.lib.take(out.value)
        self.lib.check(status, report and json.loads(report))
        return json.loads(report)

    def sync_status(self):
        return json.loads(self.lib.call_out(self.lib.lib.daiban_store_sync_status, self.handle))

    def close(self):
        self.lib.check(self.lib.lib.daiban_store_free(self.handle))


def gb11643(first17):
    """The GB 11643 check character, so the demo ID numbers are valid."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(first17, weights))
    return first17 + "10X98765432"[total % 11]


def form(name, birth, serial, materials):
    return {
        "item_code": "SB001",
        "applicant_name": name,
        "id_number": gb11643(f"431023{birth}{serial:03d}"),
        "phone": f"1380013{serial:04d}",
        "village": "石桥村",
        "group": "2组",
        "materials": [{"name": m, "received": True} for m in materials],
    }


ALL = ["身份证复印件", "户口本复印件", "解除劳动合同证明", "一寸照片2张"]

failures = []


def expect_error(what, status, fn, *args):
    """Run a call that must fail with `status`; record anything else."""
    try:
        fn(*args)
    except DaibanError as e:
        ok = e.status == status
        print(f"{what:<40} {e.status:>3} {'ok' if ok else 'UNEXPECTED'}  {e.message}")
        if not ok:
            failures.append(what)
        return
    print(f"{what:<40} succeeded, UNEXPECTED")
    failures.append(what)


def main():
    if len(sys.argv) not in (3, 4):
        print(f"usage: {sys.argv[0]} LIBDAIBAN_SO DIR [SERVER_URL]", file=sys.stderr)
        return 2
    server = sys.argv[3] if len(sys.argv) == 4 else None
    lib = Library(sys.argv[1])
    path = os.path.join(sys.argv[2], "village.db")
    key = bytes(range(32))  # an Android app takes this from the keystore
    print("libdaiban", lib.lib.daiban_version().decode())

    store = Store(lib, path, key)

    # Register from four threads at once on the one handle, as an app's workers might.
    numbers = []
    lock = threading.Lock()

    def worker(t):
        for i in range(3):
            serial = t * 10 + i + 1
            name = "王李张刘"[t] + ["秀英", "建国", "春花"][i]
            r = store.register(form(name, "19800101", serial, ALL))
            with lock:
                numbers.append(r["view"]["ticket"]["number"])

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(numbers)) == 12, numbers
    print(f"registered {len(numbers)} tickets from 4 threads")

    r = store.register(form("陈桂兰", "19551120", 99, ALL[:2]))
    missing = [w for w in r["warnings"] if w["warning"] == "materials_missing"]
    assert missing and "尚缺材料" in missing[0]["message"], r["warnings"]
    print("warning:", missing[0]["message"])

    first = sorted(numbers)[0]
    view = store.append(first, {"kind": "withdrawn", "note": "申请人撤回"})
    assert view["life"]["status"] == "withdrawn", view["life"]
    view = store.get(sorted(numbers)[1])
    print("get:", view["life"]["status"], "light:", view["deadline"]["light"],
          "需核对:", view["life"]["needs_review"])

    page = store.search({"page_size": 5})
    assert page["total"] == 13 and len(page["items"]) == 5, page["total"]
    assert all("*" in row["id_number"] for row in page["items"]), "rows are masked"
    page = store.search({"page_size": 5, "page": 2})
    assert len(page["items"]) == 3
    assert store.search({"statuses": ["withdrawn"]})["total"] == 1
    assert store.due()["total"] == 0
    print("list: 13 tickets, masked rows, paging works")

    text = store.receipt(sorted(numbers)[1])
    assert text.startswith("为民服务全程代理承办单（回执）"), text
    print(text, end="")
    assert any(i["code"] == "SB001" for i in store.catalog()["items"])

    # Sync with the township: enroll once (an https server also takes its CA, PEM), then sync.
    assert store.sync_status()["pending"] == 13
    if server is None:
        expect_error("sync: not enrolled", NOT_ENROLLED, store.sync, "http://127.0.0.1:1")
    else:
        code = os.environ.get("DAIBAN_ENROLL_CODE")
        if code:
            print("enrolled:", store.enroll(server, code))
        try:
            report = store.sync(server)
        except DaibanError as e:
            if e.status == REVOKED:  # wiped: show the agent what never reached the township
                print("revoked; never received:", [t["number"] for t in e.report["unsynced"]])
            raise
        assert report["uploaded"] == 13, report
        assert store.sync_status()["pending"] == 0
        print(f"synced: {report['uploaded']} tickets in {report['rounds']} round trip(s)")

    # Errors an app must handle: each comes back as a status, never a crash.
    bad = form("赵四", "19800101", 1, ALL)
    bad["id_number"] = bad["id_number"][:17] + ("1" if bad["id_number"][17] != "1" else "2")
    expect_error("register: wrong ID check character", FORM, store.register, bad)
    expect_error("append: agent cannot complete", EVENT, store.append, first, {"kind": "completed"})
    expect_error("get: bad check digit", NUMBER, store.get, "999999999990")
    expect_error("get: unknown ticket", NOT_FOUND, store.get, "999999999999")
    lib_ = lib.lib
    expect_error("register: malformed JSON", INVALID_JSON, lib.call_out,
                 lib_.daiban_store_register, store.handle, b"{")
    expect_error("register: invalid UTF-8", INVALID_UTF8, lib.call_out,
                 lib_.daiban_store_register, store.handle, b"\xff\xfe")
    expect_error("register: NULL form", NULL_ARGUMENT, lib.call_out,
                 lib_.daiban_store_register, store.handle, None)
    expect_error("search: NULL query", NULL_ARGUMENT, lib.call_out,
                 lib_.daiban_store_search, store.handle, None)

    # A string freed twice is refused.
    out = ctypes.c_void_p(None)
    lib.check(lib_.daiban_store_catalog(store.handle, ctypes.byref(out)))
    assert lib_.daiban_string_free(out) == OK
    status = lib_.daiban_string_free(out)
    print(f"{'string freed twice':<40} {status:>3} {'ok' if status == INVALID_STRING else 'UNEXPECTED'}")
    if status != INVALID_STRING:
        failures.append("string double free")

    # Close; the freed handle is refused, so is a second free.
    store.close()
    expect_error("search after free", INVALID_HANDLE, store.search, {})
    expect_error("free twice", INVALID_HANDLE, store.close)

    # Reopen with a wrong key, a short key, then the right one.
    expect_error("open with a wrong key", WRONG_KEY, Store, lib, path, bytes(32))
    expect_error("open with a 16-byte key", KEY_LENGTH, Store, lib, path, key[:16])
    store = Store(lib, path, key)
    assert store.search({})["total"] == 13
    store.close()

    print(f"{'PASS' if not failures else 'FAIL'}: {len(failures)} unexpected result(s)")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())

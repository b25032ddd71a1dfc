/* rime_harness.c -- types keys into a RIME session and prints what the menu offers.
 *
 * Drives librime's public C API the way an input method frontend does: deploy the user dir
 * (schemas patched there, e.g. with pyhanzi's Lua filter), open a session on a schema, send
 * one key event per character, read the context after each key (which is when the menu and
 * its filters run), and print the first page of candidates after the last key.
 *
 * Output, one record per line:
 *   deploy <milliseconds>
 *   key <char> <microseconds for process_key + get_context> <first candidate's comment>
 *                                                                 (every key of every round)
 *   cand <index> <text>\t<comment>                                (the last round's first page)
 *
 * Build: cc -O2 -o rime_harness rime_harness.c $(pkg-config --cflags --libs rime)
 * Usage: rime_harness --user-dir DIR [--shared-dir DIR] [--schema ID] [--rounds N] KEYS
 */
#include <rime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
  const char *schema = "luna_pinyin", *user_dir = NULL, *keys = NULL;
  const char *shared_dir = "/usr/share/rime-data";
  int rounds = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--schema") && i + 1 < argc) schema = argv[++i];
    else if (!strcmp(argv[i], "--user-dir") && i + 1 < argc) user_dir = argv[++i];
    else if (!strcmp(argv[i], "--shared-dir") && i + 1 < argc) shared_dir = argv[++i];
    else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
    else if (argv[i][0] != '-' && !keys) keys = argv[i];
    else { fprintf(stderr, "rime_harness: unknown argument %s\n", argv[i]); return 2; }
  }
  if (!user_dir || !keys || rounds < 1) {
    fprintf(stderr, "usage: rime_harness --user-dir DIR [--shared-dir DIR] [--schema ID] "
                    "[--rounds N] KEYS\n");
    return 2;
  }

  RimeApi *api = rime_get_api();
  RIME_STRUCT(RimeTraits, traits);
  traits.shared_data_dir = shared_dir;
  traits.user_data_dir = user_dir;
  traits.distribution_name = "pyhanzi-test";
  traits.distribution_code_name = "pyhanzi-test";
  traits.distribution_version = "1";
  traits.app_name = "rime.pyhanzi-test";
  traits.min_log_level = 2;  /* Errors only: a Lua error in the filter shows here. */
  traits.log_dir = "";       /* Log to stderr. */
  double t0 = now_us();
  api->setup(&traits);
  api->initialize(&traits);
  if (api->start_maintenance(True)) api->join_maintenance_thread();
  printf("deploy %.0f\n", (now_us() - t0) / 1e3);

  RimeSessionId session = api->create_session();
  if (!session || !api->select_schema(session, schema)) {
    fprintf(stderr, "rime_harness: cannot open schema %s\n", schema);
    return 1;
  }
  api->set_option(session, "simplification", True);
  api->set_option(session, "zh_simp", True);
  api->set_option(session, "ascii_mode", False);

  RIME_STRUCT(RimeContext, ctx);
  for (int round = 0; round < rounds; round++) {
    api->clear_composition(session);
    for (const char *k = keys; *k; k++) {
      double t = now_us();
      api->process_key(session, (unsigned char)*k, 0);
      RIME_STRUCT(RimeContext, c);
      int got = api->get_context(session, &c);
      double us = now_us() - t;
      const char *comment = got && c.menu.num_candidates > 0 && c.menu.candidates[0].comment
                                ? c.menu.candidates[0].comment : "";
      printf("key %c %.0f %s\n", *k, us, comment);
      if (got) api->free_context(&c);
    }
  }
  if (api->get_context(session, &ctx)) {
    for (int i = 0; i < ctx.menu.num_candidates; i++) {
      const char *comment = ctx.menu.candidates[i].comment;
      printf("cand %d %s\t%s\n", i, ctx.menu.candidates[i].text, comment ? comment : "");
    }
    api->free_context(&ctx);
  }
  fflush(stdout);
  api->destroy_session(session);
  api->finalize();
  return 0;
}

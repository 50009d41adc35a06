/* test/test_cli.c -- the command line's option table (section 7) and the experiment API.
 *
 * The bad-value tests are generated from cli_options: every row, for every command that takes
 * it, is fed values it must refuse, and a row's `bad` sample (a value that parses but a later
 * check or a file refuses) is run through the binary.  Uses the known-answer model of
 * test_method.c (ka_files), so this file is included after it. */

/* A bad value for parse-level refusal: returns the number written to vals (at most 4). */
static int cli_t_bad_values(const cli_option *o, char vals[4][64]) {
    int n = 0;
    switch (o->kind) {
    case O_INT:
        snprintf(vals[n++], 64, "x");
        snprintf(vals[n++], 64, "%ld", o->lo - 1);
        snprintf(vals[n++], 64, "%ld", o->hi + 1);
        snprintf(vals[n++], 64, "1.5");
        break;
    case O_ENUM:
        snprintf(vals[n++], 64, "bogus");
        snprintf(vals[n++], 64, "%s ", o->names[0]);
        break;
    case O_TEXT:
    case O_MULTI:
        vals[n++][0] = 0; /* empty */
        break;
    case O_CUSTOM:
        snprintf(vals[n++], 64, "x");
        snprintf(vals[n++], 64, "-5");
        snprintf(vals[n++], 64, "5/2");
        snprintf(vals[n++], 64, "3:1");
        break;
    default:
        break;
    }
    return n;
}

/* In-process: every row refuses its bad values, a missing value, and (switches) a value; the
 * message is one line naming the flag as given. */
static int cli_options_table(void) {
    int i, j, k, checked = 0;
    for (i = 0; i < CLI_N_OPTIONS; i++) {
        const cli_option *o = &cli_options[i];
        for (j = 0; j < CLI_N_COMMANDS; j++) {
            const cli_command *c = &cli_commands[j];
            const char *names[2];
            int ni;
            if (!(o->cmds & c->bit)) continue;
            names[0] = o->name;
            names[1] = o->alias;
            for (ni = 0; ni < 2 && names[ni]; ni++) {
                char vals[4][64], msg[512], eqarg[128];
                char *argv[4];
                cli_args a;
                int nv = cli_t_bad_values(o, vals);
                argv[0] = (char *)(uintptr_t)c->name;
                argv[1] = (char *)(uintptr_t)names[ni];
                if (o->kind == O_SWITCH) {
                    if (names[ni][1] != '-') continue; /* short switches have no =VALUE form */
                    snprintf(eqarg, sizeof eqarg, "%s=1", names[ni]);
                    argv[1] = eqarg;
                    CHECKF(cli_parse(c, 2, argv, &a, msg, sizeof msg) != 0, "%s %s accepted", c->name, eqarg);
                    CHECKF(!strncmp(msg, names[ni], strlen(names[ni])) && !strchr(msg, '\n'), "%s %s: \"%s\"", c->name,
                           eqarg, msg);
                    argv[1] = (char *)(uintptr_t)names[ni];
                    CHECKF(cli_parse(c, 2, argv, &a, msg, sizeof msg) == 0, "%s %s refused: %s", c->name, names[ni], msg);
                    checked += 2;
                    continue;
                }
                /* missing value */
                CHECKF(cli_parse(c, 2, argv, &a, msg, sizeof msg) != 0 && strstr(msg, "missing value") &&
                           !strncmp(msg, names[ni], strlen(names[ni])),
                       "%s %s (no value): \"%s\"", c->name, names[ni], msg);
                checked++;
                for (k = 0; k < nv; k++) {
                    argv[2] = vals[k];
                    CHECKF(cli_parse(c, 3, argv, &a, msg, sizeof msg) != 0, "%s %s '%s' accepted", c->name, names[ni],
                           vals[k]);
                    CHECKF(!strncmp(msg, names[ni], strlen(names[ni])) && !strchr(msg, '\n'), "%s %s '%s': \"%s\"",
                           c->name, names[ni], vals[k], msg);
                    checked++;
                }
                /* the =VALUE form of long flags reaches the same check */
                if (nv && names[ni][1] == '-') {
                    snprintf(eqarg, sizeof eqarg, "%s=%s", names[ni], vals[0]);
                    argv[1] = eqarg;
                    CHECKF(cli_parse(c, 2, argv, &a, msg, sizeof msg) != 0, "%s %s accepted", c->name, eqarg);
                    checked++;
                }
            }
        }
        /* a command that does not take it names the ones that do */
        for (j = 0; j < CLI_N_COMMANDS; j++) {
            const cli_command *c = &cli_commands[j];
            char msg[512], *argv[3];
            cli_args a;
            const cli_option *other;
            if ((o->cmds & c->bit) || cli_find_option(o->name, c->bit, &other)) continue;
            argv[0] = (char *)(uintptr_t)c->name;
            argv[1] = (char *)(uintptr_t)o->name;
            argv[2] = (char *)"1";
            CHECKF(cli_parse(c, 3, argv, &a, msg, sizeof msg) != 0 && strstr(msg, "not an option of"), "%s %s: \"%s\"",
                   c->name, o->name, msg);
            checked++;
        }
    }
    /* unknown flags and extra positionals */
    for (j = 0; j < CLI_N_COMMANDS; j++) {
        const cli_command *c = &cli_commands[j];
        char msg[512], *argv[6];
        cli_args a;
        argv[0] = (char *)(uintptr_t)c->name;
        argv[1] = (char *)"--frobnicate";
        CHECK(cli_parse(c, 2, argv, &a, msg, sizeof msg) != 0 && strstr(msg, "--frobnicate: unknown option"));
        argv[1] = (char *)"a";
        argv[2] = (char *)"b";
        argv[3] = (char *)"c";
        CHECK(cli_parse(c, 1 + c->max_pos + 1, argv, &a, msg, sizeof msg) != 0 && strstr(msg, "unexpected argument"));
        checked += 2;
    }
    printf("  %d bad command lines refused by the parser, each with one line naming the flag\n", checked);
    return 0;
}

/* A small task file of eval's three kinds for the known-answer model. */
static const char *cli_t_task(void) {
    static char path[512];
    if (!path[0]) {
        snprintf(path, sizeof path, "%s", t_tmp("cli_task.jsonl"));
        if (method_write(path, "{\"id\": \"g\", \"kind\": \"generate\", \"prompt\": \"red blue red\", \"answer\": \"blue\", "
                               "\"metric\": \"exact\"}\n"
                               "{\"id\": \"c\", \"kind\": \"choice\", \"prompt\": \"red blue red\", \"choices\": [\"blue\", \"hill\"], "
                               "\"gold\": 0}\n"
                               "{\"id\": \"p\", \"kind\": \"perplexity\", \"text\": \"red blue red blue\"}\n"))
            path[0] = 0;
    }
    return path;
}

/* A command line of command c that runs (on the known-answer model), to which a bad flag is
 * appended. */
static int cli_t_base(const cli_command *c, const char *mp, const char *hp, const char *np, const char *sp, char *out,
                      size_t cap) {
    if (c->bit == C_GENERATE) snprintf(out, cap, "%s generate %s --ids '1 2 3' -n 2", t_bin, mp);
    else if (c->bit == C_LOGITS) snprintf(out, cap, "%s logits %s --ids '1 2 3' --out %s", t_bin, mp, t_tmp("cli_l.bin"));
    else if (c->bit == C_BENCH) snprintf(out, cap, "%s bench --shape tiny -p 8 -n 1 -t 1", t_bin);
    else if (c->bit & C_GRID)
        snprintf(out, cap, "%s %s %s --haystack %s --needles %s --lengths 300 --depths 50 --buffer 20 --template '{context} {question}' --fresh -o %s", t_bin, c->name, mp, hp,
                 np, t_tmp(c->bit == C_DETECT ? "cli_d.json" : "cli_n"));
    else if (c->bit == C_EVAL)
        snprintf(out, cap, "%s eval %s --task %s --max-new 2 -o %s", t_bin, mp, cli_t_task(), t_tmp("cli_e"));
    else if (c->bit == C_REPORT) snprintf(out, cap, "%s report %s", t_bin, sp);
    else if (c->bit == C_COMPARE) snprintf(out, cap, "%s compare %s %s", t_bin, sp, sp);
    else if (c->bit == C_TOKENIZE) snprintf(out, cap, "%s tokenize %s abc", t_bin, mp);
    else snprintf(out, cap, "%s info %s", t_bin, mp);
    return 0;
}

/* Through the binary: each row's `bad` sample is refused with exit 2 and one line naming the
 * flag or the value; the base command lines themselves run. */
static int cli_bad_samples(void) {
    const char *mp, *hp, *np, *sp;
    char spb[600];
    char base[2048], cmd[4096], out[8192];
    int i, j, rc, n = 0;
    CHECK(ka_files(&mp, &hp, &np) == 0);
    snprintf(spb, sizeof spb, "%s", t_tmp("cli_scores.json")); /* t_tmp's buffers are reused */
    sp = spb;
    CHECK(method_write(sp, "{\"0-0\": [0.5], \"0-1\": [0]}") == 0);
    for (j = 0; j < CLI_N_COMMANDS; j++) {
        cli_t_base(&cli_commands[j], mp, hp, np, sp, base, sizeof base);
        snprintf(cmd, sizeof cmd, "%s --quiet 2>&1 >/dev/null", base);
        rc = t_run((cli_commands[j].bit & (C_GRID | C_EVAL)) ? cmd : base, out, sizeof out);
        CHECKF(rc == 0, "`%s`: exit %d\n%s", base, rc, out);
    }
    for (i = 0; i < CLI_N_OPTIONS; i++) {
        const cli_option *o = &cli_options[i];
        if (!o->bad) continue;
        for (j = 0; j < CLI_N_COMMANDS; j++) {
            const cli_command *c = &cli_commands[j];
            if (!(o->cmds & c->bit)) continue;
            cli_t_base(c, mp, hp, np, sp, base, sizeof base);
            snprintf(cmd, sizeof cmd, "%s %s '%s'", base, o->name, o->bad);
            rc = t_run(cmd, out, sizeof out);
            CHECKF(rc == 2, "`%s`: exit %d, want 2\n%s", cmd, rc, out);
            CHECKF(strstr(out, o->name) || (o->alias && strstr(out, o->alias)) || strstr(out, o->bad),
                   "`%s`: the message names neither the flag nor the value: %s", cmd, out);
            CHECKF(!strncmp(out, "retrieval_heads: ", 17) && strchr(out, '\n') == out + strlen(out) - 1,
                   "`%s`: not one line \"retrieval_heads: ...\": %s", cmd, out);
            n++;
        }
    }
    printf("  %d bad values that parse refused by a later check, exit 2, one line\n", n);
    return 0;
}

/* --help of every command lists exactly its rows of the table. */
static int cli_help_lists_rows(void) {
    int i, j;
    for (j = 0; j < CLI_N_COMMANDS; j++) {
        const cli_command *c = &cli_commands[j];
        char cmd[512], out[16384];
        snprintf(cmd, sizeof cmd, "%s %s --help", t_bin, c->name);
        CHECK(t_run(cmd, out, sizeof out) == 0 && !strncmp(out, "usage: retrieval_heads ", 23));
        for (i = 0; i < CLI_N_OPTIONS; i++) {
            const cli_option *o = &cli_options[i];
            char needle[80];
            /* a short alias comes first ("-t, --threads N"), a long one (an older name) after */
            if (o->alias && o->alias[1] == '-')
                snprintf(needle, sizeof needle, "  %s%s%s, %s", o->name, o->arg ? " " : "", o->arg ? o->arg : "", o->alias);
            else snprintf(needle, sizeof needle, "%s%s%s", o->alias ? ", " : "  ", o->name, o->arg ? " " : "");
            if (o->cmds & c->bit) CHECKF(strstr(out, needle), "%s --help does not list %s:\n%s", c->name, o->name, out);
        }
    }
    return 0;
}

/* rh_experiment_run from C, no argv: the same score file and records as the command line. */
static int cli_experiment_api(void) {
    const char *mp, *hp, *np;
    char cmd[4096], out[16384], err[512];
    rh_experiment x;
    rh_experiment_result res;
    int lengths[2] = {200, 400}, i;
    double depths[3] = {0, 50, 100};
    char *a, *b;
    CHECK(ka_files(&mp, &hp, &np) == 0);
    snprintf(cmd, sizeof cmd, "%s detect %s --haystack %s --needles %s " KA_GRID " -o %s", t_bin, mp, hp, np,
             t_tmp("api_cli.json"));
    CHECKF(t_run(cmd, out, sizeof out) == 0, "%s", out);
    rh_experiment_default(&x, RH_DETECT);
    x.model = mp;
    x.haystack = hp;
    x.needles = np;
    x.lengths = lengths;
    x.n_lengths = 2;
    x.depths = depths;
    x.n_depths = 3;
    x.buffer = 20;
    x.template_text = "{context} {question}";
    x.ctx.n_threads = 2;
    x.out = t_tmp("api_c.json");
    CHECKF(rh_experiment_run(&x, &res, err, sizeof err) == RH_OK, "%s", err);
    CHECK(res.n_tests == 12 && res.n_run == 12 && res.n_kept + res.n_not_kept == 12 && res.scores.n_layers > 0);
    CHECK(!strcmp(res.paths[0], t_tmp("api_c.json")));
    rh_experiment_result_free(&res);
    a = method_slurp(t_tmp("api_cli.json"), NULL);
    b = method_slurp(t_tmp("api_c.json"), NULL);
    CHECKF(a && b && !strcmp(a, b), "the API's score file differs from the CLI's");
    free(a);
    free(b);
    a = method_slurp(t_tmp("api_cli.tests.jsonl"), NULL);
    b = method_slurp(t_tmp("api_c.tests.jsonl"), NULL);
    CHECKF(a && b && !strcmp(strchr(a, '\n'), strchr(b, '\n')), "the API's records differ from the CLI's");
    free(a);
    free(b);
    /* niah with a mask, and the result's table */
    x.kind = RH_NIAH;
    x.mask.kind = RH_PICK_TOP;
    x.mask.k = 1;
    x.mask.scores = t_tmp("api_c.json");
    x.out = t_tmp("api_n");
    CHECKF(rh_experiment_run(&x, &res, err, sizeof err) == RH_OK, "%s", err);
    CHECK(res.n_lengths == 2 && res.n_depths == 3 && res.n_scored == 12 && !strncmp(res.mask_label, "top-1: ", 7));
    for (i = 0; i < 6; i++) CHECK(res.cell_n[i] == 2 && res.cell_mean[i] >= 0 && res.cell_mean[i] <= 100);
    rh_experiment_result_free(&res);
    /* bad requests come back as codes with a message, nothing printed, nothing written */
    x.shard_n = 0;
    CHECK(rh_experiment_run(&x, &res, err, sizeof err) == RH_EINVAL && strstr(err, "--shard"));
    x.shard_n = 1;
    x.mask.k = 99;
    CHECK(rh_experiment_run(&x, &res, err, sizeof err) == RH_EINVAL && strstr(err, "--mask-top") && !res.running);
    x.mask.kind = RH_PICK_HEADS;
    x.mask.heads = "0-0,0-0";
    CHECK(rh_experiment_run(&x, &res, err, sizeof err) == RH_EINVAL && strstr(err, "twice"));
    x.kind = RH_DETECT;
    CHECK(rh_experiment_run(&x, &res, err, sizeof err) == RH_EINVAL && strstr(err, "masks are for niah"));
    x.mask.kind = RH_PICK_NONE;
    x.model = t_tmp("nonexistent.rhw");
    CHECK(rh_experiment_run(&x, &res, err, sizeof err) != RH_OK && strstr(err, "nonexistent.rhw"));
    CHECK(rh_experiment_run(NULL, &res, err, sizeof err) == RH_EINVAL);
    return 0;
}


/* ---- results that cannot go stale (issue 23) ---- */

/* Replace the first occurrence of `from` in file path by `to`. */
static int cli_t_edit(const char *path, const char *from, const char *to) {
    size_t n;
    char *d = method_slurp(path, &n), *p;
    rhm_buf b = {0};
    int rc;
    if (!d || !(p = strstr(d, from))) {
        free(d);
        return -1;
    }
    rhm_buf_put(&b, d, (size_t)(p - d));
    rhm_buf_puts(&b, to);
    rhm_buf_puts(&b, p + strlen(from));
    rc = method_write(path, b.p);
    rhm_buf_free(&b);
    free(d);
    return rc;
}

static int cli_stale_results(void) {
    const char *mp, *hp, *np;
    char base[2048], cmd[4096], out[16384], *a, *b;
    int rc;
    CHECK(ka_files(&mp, &hp, &np) == 0);
    snprintf(base, sizeof base, "%s niah %s --haystack %s --needles %s " KA_GRID " -o %s", t_bin, mp, hp, np, t_tmp("st"));
    CHECK(t_run(base, out, sizeof out) == 0);
    /* the same command resumes and says so on stdout, --quiet or not */
    snprintf(cmd, sizeof cmd, "%s 2>/dev/null", base);
    rc = t_run(cmd, out, sizeof out);
    CHECKF(rc == 0 && strstr(out, "resumed: 12 of 12 tests were finished by an earlier run") && strstr(out, "; 0 run now"),
           "%d %s", rc, out);
    /* another build (as its run record says) refuses to resume, naming it */
    CHECK(cli_t_edit(t_tmp("st.run.json"), "\"build\": \"retrieval_heads", "\"build\": \"an older retrieval_heads") == 0);
    rc = t_run(base, out, sizeof out);
    CHECKF(rc == 2 && strstr(out, "was made by another configuration (build ") && strstr(out, "--fresh"), "%d %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s --fresh", base);
    CHECKF(t_run(cmd, out, sizeof out) == 0 && !strstr(out, "resumed"), "%s", out);
    /* an option that changes a result refuses, naming it; one that does not (threads) resumes */
    snprintf(cmd, sizeof cmd, "%s --max-new 7", base);
    rc = t_run(cmd, out, sizeof out);
    CHECKF(rc == 2 && strstr(out, "max_new 50 -> 7"), "%d %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s --mask-heads 1-0", base);
    rc = t_run(cmd, out, sizeof out);
    CHECKF(rc == 2 && strstr(out, "mask none -> heads-1: 1-0"), "%d %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s -t 1", base);
    CHECKF(t_run(cmd, out, sizeof out) == 0 && strstr(out, "resumed: 12 of 12"), "%s", out);
    /* records without the run record that made them are refused */
    CHECK(remove(t_tmp("st.run.json")) == 0);
    rc = t_run(base, out, sizeof out);
    CHECKF(rc == 2 && strstr(out, "exists without") && strstr(out, "st.run.json"), "%d %s", rc, out);
    /* the CSV reads with Python's csv module, its first row the header */
    CHECK(t_run(base, out, sizeof out) == 2);
    snprintf(cmd, sizeof cmd, "%s --fresh", base);
    CHECK(t_run(cmd, out, sizeof out) == 0);
    if (t_run("command -v python3", out, sizeof out) == 0) {
        snprintf(cmd, sizeof cmd,
                 "python3 -c \"import csv,sys; r=list(csv.DictReader(open(sys.argv[1], newline=''))); "
                 "assert len(r)==12 and r[0]['context_length']=='200' and float(r[0]['score'])>=0, r[:1]; print('csv ok')\" %s",
                 t_tmp("st.csv"));
        rc = t_run(cmd, out, sizeof out);
        CHECKF(rc == 0 && strstr(out, "csv ok"), "python csv: %d %s", rc, out);
    }
    /* detect --append twice counts once */
    snprintf(base, sizeof base, "%s detect %s --haystack %s --needles %s " KA_GRID " -o %s", t_bin, mp, hp, np, t_tmp("ap.json"));
    CHECK(t_run(base, out, sizeof out) == 0);
    a = method_slurp(t_tmp("ap.json"), NULL);
    snprintf(cmd, sizeof cmd, "%s --append", base);
    CHECKF(t_run(cmd, out, sizeof out) == 0, "%s", out);
    CHECKF(t_run(cmd, out, sizeof out) == 0, "%s", out);
    b = method_slurp(t_tmp("ap.json"), NULL);
    CHECKF(a && b && !strcmp(a, b), "an identical --append changed the score file");
    free(b);
    /* another grid appended adds its tests once */
    snprintf(cmd, sizeof cmd, "%s detect %s --haystack %s --needles %s --lengths 300 --depths 50 --buffer 20 "
                              "--template '{context} {question}' --quiet -o %s --append", t_bin, mp, hp, np, t_tmp("ap.json"));
    CHECKF(t_run(cmd, out, sizeof out) == 0, "%s", out);
    CHECKF(t_run(cmd, out, sizeof out) == 0, "%s", out);
    {
        rh_scores s, s0;
        char err[256];
        CHECK(rh_scores_read(t_tmp("ap.json"), &s, err, sizeof err) == RH_OK);
        CHECK(rh_scores_parse(a, strlen(a), "a", &s0, err, sizeof err) == RH_OK);
        CHECKF(s.n_tests[0] == s0.n_tests[0] + 2, "%d tests after appending 2 to %d", s.n_tests[0], s0.n_tests[0]);
        rh_scores_free(&s);
        rh_scores_free(&s0);
    }
    free(a);
    /* detect that keeps no test: exit 1, a clear message, no score file */
    snprintf(cmd, sizeof cmd, "%s detect %s --haystack %s --needles %s --lengths 300 --depths 50 --buffer 20 --quiet -o %s", t_bin,
             mp, hp, np, t_tmp("none.json"));
    rc = t_run(cmd, out, sizeof out);
    CHECKF(rc == 1 && strstr(out, "no test was kept") && access(t_tmp("none.json"), F_OK) != 0, "%d %s", rc, out);
    /* --mask-top on a score file whose heads all score 0 */
    CHECK(method_write(t_tmp("zero.json"), "{\"0-0\": [0, 0], \"0-1\": [0, 0]}") == 0);
    snprintf(cmd, sizeof cmd, "%s niah %s --haystack %s --needles %s " KA_GRID " --mask-top 1 --scores %s -o %s", t_bin, mp, hp,
             np, t_tmp("zero.json"), t_tmp("zm"));
    rc = t_run(cmd, out, sizeof out);
    CHECKF(rc == 2 && strstr(out, "mean score 0"), "%d %s", rc, out);
    /* -o names: a folder gets the default name inside it, BASE.csv stands for BASE */
    t_mkdir(t_tmp("odir"));
    snprintf(cmd, sizeof cmd, "%s niah %s --haystack %s --needles %s " KA_GRID " -o %s/", t_bin, mp, hp, np, t_tmp("odir"));
    CHECKF(t_run(cmd, out, sizeof out) == 0 && access(t_tmp("odir/niah.jsonl"), F_OK) == 0, "%s", out);
    snprintf(cmd, sizeof cmd, "%s niah %s --haystack %s --needles %s " KA_GRID " -o %s", t_bin, mp, hp, np, t_tmp("res.csv"));
    CHECKF(t_run(cmd, out, sizeof out) == 0 && access(t_tmp("res.csv"), F_OK) == 0 && access(t_tmp("res.jsonl"), F_OK) == 0 &&
               access(t_tmp("res.csv.csv"), F_OK) != 0, "%s", out);
    return 0;
}

/* ---- the original's inputs and its prompt (--compat original) ---- */
static int cli_original_inputs(void) {
    const char *mp, *hp, *np;
    char cmd[4096], out[16384], err[512], *hay;
    int i;
    CHECK(ka_files(&mp, &hp, &np) == 0);
    /* needles with real_needle, and a haystack folder of part1/, part2/ (one per needle) */
    CHECK(method_write(t_tmp("orig_needles.jsonl"),
                       "{\"needle\": \"the secret code is alpha bravo charlie\\n\", \"question\": \"the secret code is\", "
                       "\"real_needle\": \"alpha bravo charlie\"}\n"
                       "{\"needle\": \"my lucky word is delta echo\\n\", \"question\": \"my lucky word is\", \"real_needle\": "
                       "\"delta echo\"}\n") == 0);
    hay = method_slurp(hp, NULL);
    CHECK(hay != NULL);
    t_mkdir(t_tmp("orig_hay"));
    t_mkdir(t_tmp("orig_hay/part1"));
    t_mkdir(t_tmp("orig_hay/part2"));
    CHECK(method_write(t_tmp("orig_hay/part1/p1.txt"), hay) == 0);
    CHECK(method_write(t_tmp("orig_hay/part2/p1.txt"), hay + 200) == 0);
    free(hay);
    snprintf(cmd, sizeof cmd, "%s niah %s --haystack %s --needles %s " KA_GRID " -o %s", t_bin, mp, t_tmp("orig_hay"),
             t_tmp("orig_needles.jsonl"), t_tmp("orig"));
    CHECKF(t_run(cmd, out, sizeof out) == 0 && strstr(out, "mean score: 100.0 over 12 tests"), "%s", out);
    /* a third needle has no part3/ */
    CHECK(method_write(t_tmp("orig_needles3.jsonl"),
                       "{\"needle\": \"a b\", \"question\": \"c\", \"real_needle\": \"b\"}\n"
                       "{\"needle\": \"a b\", \"question\": \"c\", \"real_needle\": \"b\"}\n"
                       "{\"needle\": \"a b\", \"question\": \"c\", \"real_needle\": \"b\"}\n") == 0);
    snprintf(cmd, sizeof cmd, "%s niah %s --haystack %s --needles %s " KA_GRID " -o %s", t_bin, mp, t_tmp("orig_hay"),
             t_tmp("orig_needles3.jsonl"), t_tmp("orig3"));
    CHECKF(t_run(cmd, out, sizeof out) == 2 && strstr(out, "no part3/"), "%s", out);
    /* --compat original builds the prompt with BOS at the start and directly before the needle */
    {
        rh_model *m;
        rhm_niah N;
        rhm_test T, U;
        int *hay_ids = NULL, n_hay = 0, *nid = NULL, nn = 0, *ans[2], n_ans[2];
        char *text;
        size_t tl;
        CHECK(rh_model_open(mp, &m, err, sizeof err) == RH_OK);
        CHECK(rhm_read_file(hp, 1 << 20, &text, &tl, err, sizeof err) == RH_OK);
        CHECK(rhm_haystack_tokens(m, text, tl, 400, &hay_ids, &n_hay, err, sizeof err) == RH_OK);
        free(text);
        memset(&N, 0, sizeof N);
        N.m = m;
        N.space_prefix = rhm_has_space_prefix(m);
        N.buffer = 20;
        N.tmpl = "{context} {question}";
        N.hay = hay_ids;
        N.n_hay = n_hay;
        CHECK(rhm_tokenize_incontext(m, N.space_prefix, "my lucky word is delta echo\n", &nid, &nn, err, sizeof err) == 0);
        CHECK(rhm_tokenize_incontext(m, N.space_prefix, "delta echo", &ans[0], &n_ans[0], err, sizeof err) == 0);
        CHECK(rh_tokenize(m, "delta echo", 10, 0, &ans[1], &n_ans[1], err, sizeof err) == 0);
        {
            rhm_needle nd;
            nd.needle = (char *)"my lucky word is delta echo\n";
            nd.question = (char *)"my lucky word is";
            nd.answer = (char *)"delta echo";
            CHECK(rhm_build_test(&N, &nd, nid, nn, ans, n_ans, 300, 50, &T, err, sizeof err) == RH_OK);
            N.compat = 1;
            N.span_whole_prompt = 1;
            CHECK(rhm_build_test(&N, &nd, nid, nn, ans, n_ans, 300, 50, &U, err, sizeof err) == RH_OK);
        }
        CHECK(T.ids[0] == 1 && U.ids[0] == 1);
        CHECKF(U.n_ids == T.n_ids + 1 && U.ids[U.needle_lo - 1] == 1 && T.ids[T.needle_lo - 1] != 1,
               "compat prompt: %d ids (plain %d), token before the needle %d", U.n_ids, T.n_ids, U.ids[U.needle_lo - 1]);
        for (i = 1; i < U.n_ids; i++) CHECK(i == U.needle_lo - 1 || U.ids[i] != 1); /* no other BOS */
        CHECK(U.span_start >= U.needle_lo && U.span_start < U.needle_hi && U.span_variant == 1);
        rhm_test_free(&T);
        rhm_test_free(&U);
        free(hay_ids);
        free(nid);
        free(ans[0]);
        free(ans[1]);
        rh_model_close(m);
    }
    /* and every output says so */
    snprintf(cmd, sizeof cmd, "%s detect %s --haystack %s --needles %s " KA_GRID " --compat original -o %s", t_bin, mp, hp, np,
             t_tmp("compat.json"));
    CHECKF(t_run(cmd, out, sizeof out) == 0 && strstr(out, "compat: original"), "%s", out);
    {
        char *r = method_slurp(t_tmp("compat.run.json"), NULL);
        CHECKF(r && strstr(r, "\"compat\": \"original\""), "%s", r ? r : "(no run record)");
        free(r);
    }
    return 0;
}

/* ---- figures that fit (issue 23): sample SVGs at many sizes, every text inside the viewBox by
 * the layout's own width estimate; test/svg_check.sh measures them again in Chromium (set
 * RH_SVG_SAMPLES=DIR to keep the samples) ---- */

/* Every <text> of an SVG inside its viewBox, by RHM_EM_W: 0, or 1 with what is out in why. */
static int cli_t_svg_fits(const char *svg, char *why, size_t cap) {
    double W, H;
    const char *p = strstr(svg, "viewBox=\"0 0 ");
    if (!p || sscanf(p + 13, "%lf %lf", &W, &H) != 2) return snprintf(why, cap, "no viewBox"), 1;
    for (p = svg; (p = strstr(p, "<text ")) != NULL; p++) {
        double x = 0, y = 0, fs = 11, w, x0, x1;
        const char *q, *gt = strchr(p, '>'), *end = strstr(p, "</text>");
        char text[512];
        size_t n;
        int rot, anchor_end, anchor_mid;
        if (!gt || !end) return snprintf(why, cap, "unclosed <text>"), 1;
        if ((q = strstr(p, " x=\"")) && q < gt) x = atof(q + 4);
        if ((q = strstr(p, " y=\"")) && q < gt) y = atof(q + 4);
        if ((q = strstr(p, "font-size=\"")) && q < gt) fs = atof(q + 11);
        rot = (q = strstr(p, "rotate(-90")) != NULL && q < gt;
        anchor_end = (q = strstr(p, "text-anchor=\"end\"")) != NULL && q < gt;
        anchor_mid = (q = strstr(p, "text-anchor=\"middle\"")) != NULL && q < gt;
        n = (size_t)(end - gt - 1) < sizeof text - 1 ? (size_t)(end - gt - 1) : sizeof text - 1;
        memcpy(text, gt + 1, n);
        text[n] = 0;
        { /* an entity (&gt;) is one character */
            char *r = text, *wp = text;
            while (*r) {
                char *sc = *r == '&' ? strchr(r, ';') : NULL;
                *wp++ = *r;
                r = sc && sc - r < 8 ? sc + 1 : r + 1;
            }
            *wp = 0;
        }
        w = rhm_text_w(text, fs);
        x0 = anchor_end ? -w : anchor_mid ? -w / 2 : 0;
        x1 = x0 + w;
        if (rot) { /* rotated about (x, y): the text runs up from y */
            if (y - x1 < -0.5 || y - x0 > H + 0.5 || x - fs < -0.5 || x > W + 0.5)
                return snprintf(why, cap, "turned text \"%.60s\" at (%.0f, %.0f) outside %.0f x %.0f", text, x, y, W, H), 1;
        } else if (x + x0 < -0.5 || x + x1 > W + 0.5 || y - fs < -0.5 || y + 3 > H + 0.5) {
            return snprintf(why, cap, "text \"%.60s\" at (%.0f, %.0f), %.0f wide, outside %.0f x %.0f", text, x, y, w, W, H), 1;
        }
    }
    return 0;
}

static int cli_svg_fit(void) {
    static const int sizes[][2] = {{1, 1}, {1, 3}, {3, 1}, {3, 3}, {5, 20}, {20, 10}, {40, 40}, {64, 80}};
    const char *keep = getenv("RH_SVG_SAMPLES");
    char why[512], path[1024];
    int si, i, n_checked = 0;
    for (si = 0; si < (int)(sizeof sizes / sizeof sizes[0]); si++) {
        int nx = sizes[si][0], ny = sizes[si][1], kind;
        for (kind = 0; kind < 2; kind++) {
            char **xt = (char **)calloc((size_t)nx, sizeof *xt), **yt = (char **)calloc((size_t)ny, sizeof *yt);
            double *val = (double *)malloc((size_t)nx * ny * sizeof *val);
            rhm_buf b = {0}, title = {0};
            CHECK(xt && yt && val);
            for (i = 0; i < nx; i++) {
                xt[i] = (char *)malloc(16);
                snprintf(xt[i], 16, "%d", kind == 0 ? 1000 + i * 2573 : i);
            }
            for (i = 0; i < ny; i++) {
                yt[i] = (char *)malloc(16);
                if (kind == 0) snprintf(yt[i], 16, "%.3f", 100.0 * i / (ny > 1 ? ny - 1 : 1));
                else snprintf(yt[i], 16, "%d", i);
            }
            for (i = 0; i < nx * ny; i++) val[i] = i % 7 == 4 ? NAN : (kind == 0 ? 100.0 * (i % 11) / 10 : ((i + 5) % 13) / 12.0);
            if (kind == 0)
                rhm_buf_printf(&title, "NIAH, /a/rather/long/path/to/models/llama-2-7b-80k.f16.rhw, mask top-%d: %s: mean score "
                                       "87.3 over %d tests", nx, "2-0 3-0 3-1 4-17 11-2 12-30 15-9 17-22 19-9 20-14 25-3", nx * ny);
            else rhm_buf_printf(&title, "Retrieval scores, /models/m.rhw: 5 of %d heads > 0.1 (166 tests)", nx * ny);
            if (kind == 0)
                rhm_svg_heatmap(&b, title.p, "context length (tokens)", "depth (%)", nx, ny, xt, yt, val, 0, 100, 0, 1, 0, "{}");
            else rhm_svg_heatmap(&b, title.p, "head", "layer", nx, ny, xt, yt, val, 0, 1, 1, 0, 0.1, "{}");
            CHECK(!b.oom);
            CHECKF(cli_t_svg_fits(b.p, why, sizeof why) == 0, "%s %dx%d: %s", kind ? "score map" : "NIAH map", nx, ny, why);
            CHECK(strstr(b.p, "</svg>\n") && strstr(b.p, "<desc>{}</desc>"));
            if (kind == 1) CHECK(strstr(b.p, "stroke=\"#d62728\"") && strstr(b.p, "outlined: mean score &gt; 0.1"));
            if (keep) {
                snprintf(path, sizeof path, "%s/%s_%dx%d.svg", keep, kind ? "scores" : "niah", nx, ny);
                CHECK(rhm_write_atomic(path, b.p, b.n, why, sizeof why) == RH_OK);
            }
            n_checked++;
            for (i = 0; i < nx; i++) free(xt[i]);
            for (i = 0; i < ny; i++) free(yt[i]);
            free(xt);
            free(yt);
            free(val);
            rhm_buf_free(&b);
            rhm_buf_free(&title);
        }
    }
    /* the report's histogram and the compare scatter, small and large */
    for (si = 0; si < 2; si++) {
        int n = si ? 5120 : 4, k;
        double *a = (double *)malloc((size_t)n * sizeof *a), *bb = (double *)malloc((size_t)n * sizeof *bb);
        char **names = (char **)calloc((size_t)n, sizeof *names);
        rhm_buf h = {0}, sc = {0};
        CHECK(a && bb && names);
        for (k = 0; k < n; k++) {
            a[k] = k % 50 == 0 ? 0.2 + (k % 7) * 0.13 : (k % 3) * 0.01;
            bb[k] = k % 50 == 0 ? 0.9 - (k % 5) * 0.1 : (k % 4) * 0.012;
            names[k] = (char *)malloc(16);
            snprintf(names[k], 16, "%d-%d", k / 64, k % 64);
        }
        rhm_svg_histogram(&h, "/some/long/path/to/the/scores/Mixtral-8x7B-v0.1.json: 41 of 5120 heads above 0.1 (32 "
                              "layers x 160 heads)", a, n, NULL);
        rhm_svg_scatter(&sc, "mean retrieval score per head: 5120 heads, Spearman 0.812", "/a/long/path/A.json",
                        "/another/long/path/B.json", a, bb, names, n, 8, NULL);
        CHECK(!h.oom && !sc.oom);
        CHECKF(cli_t_svg_fits(h.p, why, sizeof why) == 0, "histogram: %s", why);
        CHECKF(cli_t_svg_fits(sc.p, why, sizeof why) == 0, "scatter: %s", why);
        if (keep) {
            snprintf(path, sizeof path, "%s/histogram_%d.svg", keep, n);
            CHECK(rhm_write_atomic(path, h.p, h.n, why, sizeof why) == RH_OK);
            snprintf(path, sizeof path, "%s/scatter_%d.svg", keep, n);
            CHECK(rhm_write_atomic(path, sc.p, sc.n, why, sizeof why) == RH_OK);
        }
        for (k = 0; k < n; k++) free(names[k]);
        free(names);
        free(a);
        free(bb);
        rhm_buf_free(&h);
        rhm_buf_free(&sc);
        n_checked += 2;
    }
    printf("  %d figures (heatmaps 1x1 to 64x80, histogram, scatter): every text inside the viewBox%s\n", n_checked,
           keep ? " (samples kept)" : "");
    return 0;
}

/* ---- consumers of score files: QRHead's list form, KV heads of grouped-query models ---- */
static int cli_consumers(void) {
    const char *a = t_tmp("cons.json"), *q = t_tmp("cons_qr.json");
    char cmd[2048], out[16384], err[256];
    rh_scores s, t2;
    int i, rc;
    /* 2 layers x 4 heads; with 2 KV heads, KV head 1-1 serves query heads 1-2 and 1-3 */
    CHECK(method_write(a, "{\"0-0\": [0, 0], \"0-1\": [0.5, 0.3], \"0-2\": [0, 0.02], \"0-3\": [0, 0], \"1-0\": [0.1, 0.1], "
                          "\"1-1\": [0, 0], \"1-2\": [0.2, 0.4], \"1-3\": [0.6, 0.2]}") == 0);
    snprintf(cmd, sizeof cmd, "%s report %s --kv-heads 2 --out %s --format qrhead", t_bin, a, q);
    rc = t_run(cmd, out, sizeof out);
    CHECKF(rc == 0 && strstr(out, "KV heads (2 per layer, 2 query heads each)"), "%d %s", rc, out);
    /* a tie keeps layer-major order, as the heads' ranking does */
    CHECKF(strstr(out, "1      0-0      0.4000     0.4000     0-0..0-1"), "%s", out);
    CHECKF(strstr(out, "2      1-1      0.4000     0.7000     1-2..1-3"), "%s", out);
    /* the list form reads back with the same means, highest first in the file */
    CHECK(rh_scores_read(a, &s, err, sizeof err) == RH_OK);
    CHECKF(rh_scores_read(q, &t2, err, sizeof err) == RH_OK, "%s", err);
    for (i = 0; i < 8; i++) CHECKF(fabs(rh_scores_mean(&s, i) - rh_scores_mean(&t2, i)) < 1e-15, "head %d", i);
    rh_scores_free(&s);
    rh_scores_free(&t2);
    {
        char *d = method_slurp(q, NULL);
        CHECKF(d && !strncmp(d, "[\n    [\n        \"0-1\",\n        0.4\n    ],\n    [\n        \"1-3\",\n        0.4\n    ]", 70),
               "%.200s", d ? d : "(none)");
        free(d);
    }
    if (t_run("command -v python3", out, sizeof out) == 0) {
        snprintf(cmd, sizeof cmd, "python3 -c \"import json,sys; d=json.load(open(sys.argv[1])); "
                                  "print(json.dumps([tuple(x) for x in d], indent=4) == open(sys.argv[1]).read())\" %s", q);
        CHECKF(t_run(cmd, out, sizeof out) == 0 && strstr(out, "True"), "QRHead form is not json.dump's: %s", out);
    }
    /* bad list items and a --kv-heads that does not divide */
    {
        static const char *const bad[] = {"[[\"0-0\"]]", "[[\"0-0\", \"x\"]]", "[[1, 0.5]]", "[0.5]", "[[\"0-0\", 0.5], [\"0-0\", 1]]",
                                          "[]"};
        for (i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++)
            CHECKF(rh_scores_parse(bad[i], strlen(bad[i]), "x", &s, err, sizeof err) != RH_OK, "accepted %s", bad[i]);
    }
    snprintf(cmd, sizeof cmd, "%s report %s --kv-heads 3", t_bin, a);
    rc = t_run(cmd, out, sizeof out);
    CHECKF(rc == 2 && strstr(out, "--kv-heads: 3 KV heads do not divide the 4 heads"), "%d %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s report %s --format qrhead", t_bin, a);
    CHECKF(t_run(cmd, out, sizeof out) == 2 && strstr(out, "--format: needs --out"), "%s", out);
    return 0;
}

static const rh_test_case cli_tests[] = {{"cli/options_table", cli_options_table},
                                         {"cli/bad_samples", cli_bad_samples},
                                         {"cli/help", cli_help_lists_rows},
                                         {"cli/experiment_api", cli_experiment_api},
                                         {"cli/stale_results", cli_stale_results},
                                         {"cli/original_inputs", cli_original_inputs},
                                         {"cli/svg_fit", cli_svg_fit},
                                         {"cli/consumers", cli_consumers},
                                         {NULL, NULL}};

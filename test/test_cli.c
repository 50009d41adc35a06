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
        snprintf(out, cap, "%s %s %s --haystack %s --needles %s --lengths 300 --depths 50 --buffer 20 -o %s", t_bin, c->name, mp, hp,
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
    char base[2048], cmd[4096], out[8192], spb[512];
    int i, j, rc, n = 0;
    snprintf(spb, sizeof spb, "%s", t_tmp("cli_scores.json")); /* t_tmp's ring is reused below */
    sp = spb;
    CHECK(ka_files(&mp, &hp, &np) == 0);
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
            snprintf(needle, sizeof needle, "%s%s%s", o->alias ? ", " : "  ", o->name, o->arg ? " " : "");
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

static const rh_test_case cli_tests[] = {{"cli/options_table", cli_options_table},
                                         {"cli/bad_samples", cli_bad_samples},
                                         {"cli/help", cli_help_lists_rows},
                                         {"cli/experiment_api", cli_experiment_api},
                                         {NULL, NULL}};

#!/usr/bin/env node
// fastsuspend-lab: build, boot and use the nested Xen lab from a shell.
import { readFileSync } from "node:fs";
import { buildArtefacts } from "./artefacts";
import { DEFAULT_STACK, STACKS, parseStack } from "./pins";
import { buildStackArtefacts } from "./stack-artefacts";
import { LabError } from "./errors";
import { Lab, runDirFor } from "./lab";
import { stderrProgress } from "./progress";
import { consoleLog, stopQemu } from "./qemu";

const USAGE = `usage: fastsuspend-lab <command> [options]
  build [--stack bookworm|trixie]
                                build (or find cached) Xen, dom0 and guest artefacts
  up [--stack bookworm|trixie] [--xenstored oxenstored|cxenstored] [--hypervisor FILE] [--guest-kernel FILE]
                                boot the lab in the background and wait until dom0 is ready
                                (stack: bookworm, the default, is Xen 4.17 + Linux 6.1; trixie is Xen 4.20 + Linux 6.12)
  exec [--timeout SEC] -- CMD…  run CMD in dom0; exit code, stdout and stderr are passed through
  guest create NAME [--type pv|pvh] [--kernel FILE] [--memory MB] [--extra ARGS]
  guest destroy NAME
  console [--lines N]           print the serial console (Xen and dom0)
  consoles [--lines N]          print Xen's log (xl dmesg) and the tail of every guest console
  down                          stop the lab's QEMU
common: --name NAME (default "default"; labs with different names run side by side)`;

interface Args {
  positional: string[];
  flags: Map<string, string>;
  rest: string[];
}

function parse(argv: string[]): Args {
  const dd = argv.indexOf("--");
  const head = dd >= 0 ? argv.slice(0, dd) : argv;
  const rest = dd >= 0 ? argv.slice(dd + 1) : [];
  const positional: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < head.length; i++) {
    const a = head[i] ?? "";
    if (a.startsWith("--")) {
      const v = head[i + 1];
      if (v === undefined || v.startsWith("--")) flags.set(a.slice(2), "true");
      else {
        flags.set(a.slice(2), v);
        i++;
      }
    } else positional.push(a);
  }
  return { positional, flags, rest };
}

async function main(argv: string[]): Promise<number> {
  const { positional, flags, rest } = parse(argv);
  const name = flags.get("name") ?? "default";
  const progress = stderrProgress("lab");
  switch (positional[0]) {
    case "build": {
      const stack = stackFlag(flags);
      const a = stack === DEFAULT_STACK ? await buildArtefacts(progress) : await buildStackArtefacts(stack, progress);
      console.log(JSON.stringify(a, null, 2));
      return 0;
    }
    case "up": {
      const stack = stackFlag(flags);
      const xs = flags.get("xenstored") ?? "oxenstored";
      if (xs !== "oxenstored" && xs !== "cxenstored") throw new LabError(`unknown xenstored ${xs}`, "use oxenstored or cxenstored");
      const lab = await Lab.up({
        name, detached: true, progress, xenstored: xs,
        hypervisor: flags.get("hypervisor"), guestKernel: flags.get("guest-kernel"),
        ...(stack === DEFAULT_STACK ? {} : { stack }),
      });
      lab.disconnect();
      console.log(`lab "${name}" up in ${(lab.bootMs / 1000).toFixed(1)}s (${xs}${stack === DEFAULT_STACK ? "" : `, stack ${stack}`}); run dir ${lab.runDir}`);
      return 0;
    }
    case "exec": {
      if (rest.length === 0) throw new LabError("exec needs a command after --", "e.g. fastsuspend-lab exec -- xl list");
      const lab = await Lab.attach(name);
      try {
        const r = await lab.exec(rest, {
          timeoutMs: Number(flags.get("timeout") ?? "600") * 1000,
          onStdout: (t) => process.stdout.write(t),
          onStderr: (t) => process.stderr.write(t),
        });
        if (r.timedOut) process.stderr.write("fastsuspend-lab: command timed out in dom0\n");
        return r.code;
      } finally {
        lab.disconnect();
      }
    }
    case "guest": {
      const gname = positional[2];
      if (!gname) throw new LabError("guest needs a name", USAGE);
      const lab = await Lab.attach(name);
      try {
        if (positional[1] === "create") {
          const mem = flags.get("memory");
          const type = flags.get("type") ?? "pv";
          if (type !== "pv" && type !== "pvh") throw new LabError(`unknown guest type ${type}`, "use --type pv or --type pvh");
          const g = await lab.createGuest({ name: gname, type, kernel: flags.get("kernel"), memoryMb: mem ? Number(mem) : undefined, extra: flags.get("extra") });
          console.log(`guest ${g.name} (${g.type}) is domain ${g.domid} (created in ${(g.createMs / 1000).toFixed(1)}s)`);
        } else if (positional[1] === "destroy") await lab.destroyGuest(gname);
        else throw new LabError(`unknown guest command ${positional[1] ?? ""}`, USAGE);
        return 0;
      } finally {
        lab.disconnect();
      }
    }
    case "console": {
      const lines = Number(flags.get("lines") ?? "0");
      const text = readFileSync(consoleLog(runDirFor(name)), "latin1");
      process.stdout.write(lines > 0 ? text.split("\n").slice(-lines).join("\n") : text);
      return 0;
    }
    case "consoles": {
      const lab = await Lab.attach(name);
      try {
        process.stdout.write(await lab.consoleTails(Number(flags.get("lines") ?? "150")));
      } finally {
        lab.disconnect();
      }
      return 0;
    }
    case "down": {
      const stopped = await stopQemu(runDirFor(name));
      console.log(stopped ? `lab "${name}" stopped` : `lab "${name}" was not running`);
      return 0;
    }
    default:
      console.error(USAGE);
      return positional[0] === undefined || flags.has("help") ? 0 : 2;
  }
}

function stackFlag(flags: Map<string, string>): ReturnType<typeof parseStack> {
  try {
    return parseStack(flags.get("stack"));
  } catch (e) {
    throw new LabError((e as Error).message, `use --stack ${STACKS.join(" or --stack ")}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof LabError ? `fastsuspend-lab: ${e.message}` : e);
    process.exit(1);
  },
);

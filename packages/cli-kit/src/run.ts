export type Command = (argv: string[]) => Promise<void>;

/** A subcommand and its usage text (printed for `adanns NAME --help`). */
export interface CommandEntry {
  run: Command;
  usage: string;
}

/**
 * Dispatches to a command and turns every failure into one line on stderr:
 * exit code 2 for usage errors and bad input, 1 for anything unexpected.
 */
export async function runCli(argv: string[], commands: Record<string, CommandEntry>, usage: string): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    console.log(usage);
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    console.error(`adanns: unknown command "${name}" (expected ${Object.keys(commands).join(', ')}; see adanns --help)`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.usage);
    return 0;
  }
  try {
    await command.run(rest);
    return 0;
  } catch (e) {
    // The engine reports bad input as plain Errors with a message for the user (exit 2);
    // TypeError and friends are our bugs: show the stack and exit 1.
    const bug = e instanceof TypeError || e instanceof ReferenceError || !(e instanceof Error);
    const message = e instanceof Error ? e.message : String(e);
    console.error(`adanns ${name}: error: ${message}`);
    if ((bug || process.env.ADANNS_DEBUG) && e instanceof Error) console.error(e.stack);
    return bug ? 1 : 2;
  }
}

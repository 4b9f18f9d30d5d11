// Placeholder until the native build lands: the helper replaces this.
process.exit(0);

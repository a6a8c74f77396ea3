export async function main(_argv: string[]): Promise<number> {
  console.error('lxcfs-ts: the daemon is not implemented yet');
  return 1;
}

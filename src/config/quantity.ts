import { QUANTITY_PATTERN } from './schema.js';

const SUFFIXES: Readonly<Record<string, number>> = {
  '': 1,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** The amount a Kubernetes resource quantity stands for, to compare two of them (`500m` < `1`). */
export function quantityValue(quantity: string): number {
  if (!new RegExp(QUANTITY_PATTERN).test(quantity)) throw new Error(`"${quantity}" is not a resource quantity`);
  const [, number, suffix = ''] = /^\+?([0-9.]+(?:[eE][-+]?[0-9]+)?)([a-zA-Z]*)$/.exec(quantity)!;
  return Number(number) * SUFFIXES[suffix]!;
}

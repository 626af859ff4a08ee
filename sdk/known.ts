/**
 * The schemas parse loosely (a newer connector's extra fields reach the scripts), which makes
 * their types accept any key as `unknown`: `call_full.is_ivrr` would type-check and always be
 * undefined. Scripts see the declared fields only, so a misspelt field is a compile error; maps
 * (conversations, raw, extra) stay maps. An undeclared field is still there at run time: read it
 * with `(call_full as Record<string, unknown>).new_field`.
 */
type Declared<T> = {
  [K in keyof T as string extends K ? never : number extends K ? never : symbol extends K ? never : K]: Known<T[K]>;
};
type Values<T> = { [K in keyof T]: Known<T[K]> };

export type Known<T> = T extends readonly (infer Item)[]
  ? Known<Item>[]
  : T extends (...args: never[]) => unknown
    ? T
    : T extends object
      ? keyof Declared<T> extends never
        ? Values<T>
        : Declared<T>
      : T;

// Small pieces shared by the pages: form fields with their error beside them, status badges,
// a POST button.
import type { Child } from 'hono/jsx';
import type { DeploymentStatus } from '../runtime/store/deployments.ts';
import { CsrfField } from './layout.tsx';

export type FieldErrors = Record<string, string>;

/** a labelled form control with its hint and its error (the API's message) right under it */
export function Field(props: { name: string; id?: string; label: string; errors?: FieldErrors; hint?: Child; children: Child }) {
  const error = props.errors?.[props.name];
  return (
    <div class={error ? 'field has-error' : 'field'} data-field={props.name}>
      <label for={props.id ?? `f-${props.name}`}>{props.label}</label>
      {props.children}
      {props.hint ? <div class="hint">{props.hint}</div> : null}
      {error ? (
        <div class="field-error" id={`e-${props.name}`} role="alert">
          {error}
        </div>
      ) : null}
    </div>
  );
}

/** an error that belongs to no single field */
export function FormError(props: { message?: string | null }) {
  if (!props.message) return null;
  return (
    <div class="form-error" role="alert">
      {props.message}
    </div>
  );
}

const STATUS_CLASS: Record<string, string> = {
  live: 'ok',
  ready: 'info',
  queued: 'wait',
  building: 'wait',
  superseded: 'muted',
  failed: 'bad',
  interrupted: 'bad',
  'no deployment': 'muted',
  'failed last deploy': 'bad',
  'start failing': 'bad',
};

export function StatusBadge(props: { status: DeploymentStatus | string }) {
  return <span class={`badge badge-${STATUS_CLASS[props.status] ?? 'muted'}`}>{props.status}</span>;
}

/** a button that POSTs (with the CSRF token) to `action` */
export function PostButton(props: { action: string; csrf: string; label: string; class?: string; confirm?: string; title?: string }) {
  return (
    <form method="post" action={props.action} class="inline" data-confirm={props.confirm}>
      <CsrfField token={props.csrf} />
      <button type="submit" class={props.class ?? 'small'} title={props.title}>
        {props.label}
      </button>
    </form>
  );
}

export function Empty(props: { children: Child }) {
  return <p class="empty">{props.children}</p>;
}

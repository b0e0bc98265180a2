#!/usr/bin/env node
/** The CDK app: `npx cdk synth` / `npx cdk deploy --all`. */
import { buildApp } from '../lib/app';

buildApp().app.synth();
